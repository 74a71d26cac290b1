#!/usr/bin/env python3
"""Side-by-side cfg S figures: transduce vs PyTorch (../shared/bench/torch_ref.py), alternating
runs in one session, reporting each system's median over rounds and the ratio of medians.

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -r bench/requirements.txt
    cargo build --release
    .venv-bench/bin/python bench/compare_torch.py --rounds 3 [--preset base] [--figure train]
    .venv-bench/bin/python bench/compare_torch.py --rounds 3 --corpus SRC TGT --tokenizer MODEL/tokenizer.json

--corpus times training on the trainer's own batches of a real corpus (token budget --max-tokens,
sentences of similar length padded together) instead of torch_ref's fixed 64 x 16 batch: transduce
writes the batches it timed (`transduce bench train-corpus --write-batches`) and
bench/torch_corpus.py runs PyTorch's step on the same ones.

Ratios: train = transduce tokens/s / PyTorch tokens/s (higher is better for transduce);
greedy = transduce ms per step / PyTorch ms per step (lower is better for transduce).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TORCH_REF = ROOT.parent / "shared" / "bench" / "torch_ref.py"
# torch_ref.py flags giving the same model as each transduce preset
TORCH_FLAGS = {"small": [], "base": ["--d-model", "512", "--heads", "8", "--ffn", "2048", "--layers", "6"]}


def run(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def key(fig):
    return fig["figure"] if fig["figure"] == "train_step" else f"greedy_b{fig['batch']}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "transduce"))
    ap.add_argument("--preset", choices=sorted(TORCH_FLAGS), default="small",
                    help="small = cfg S (torch_ref's default); base = d 512, 8 heads, FFN 2048, 6+6 layers")
    ap.add_argument("--figure", choices=["all", "train", "greedy"], default="all")
    ap.add_argument("--corpus", nargs=2, metavar=("SRC", "TGT"), help="time training on this corpus' batches")
    ap.add_argument("--tokenizer", help="with --corpus: the tokenizer.json of a model trained on it")
    ap.add_argument("--max-tokens", type=int, default=1024, help="with --corpus: the batch budget")
    ap.add_argument("--batches", type=int, default=50, help="with --corpus: batches timed")
    ap.add_argument("--workers", type=int, help="with --corpus: transduce's workers (default: training's)")
    ap.add_argument("--work", default=str(ROOT / "bench" / "work"))
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="2")
    if args.corpus:
        return corpus(args, env)
    results = {"transduce": {}, "torch": {}}
    for r in range(args.rounds):
        for system, cmd in (
            ("transduce", [args.binary, "bench", args.figure, "--preset", args.preset]),
            ("torch", [sys.executable, str(TORCH_REF), {"greedy": "infer"}.get(args.figure, args.figure)]
             + TORCH_FLAGS[args.preset]),
        ):
            for fig in run(cmd, env):
                if fig["figure"] in ("train_step", "greedy_decode"):
                    value = fig["tgt_tokens_per_s"] if fig["figure"] == "train_step" else fig["ms_per_step"]
                    results[system].setdefault(key(fig), []).append(value)
                    print(json.dumps({"round": r, **fig}), flush=True)
    summary = {"preset": args.preset}
    for k in [k for k in ("train_step", "greedy_b1", "greedy_b32") if k in results["transduce"]]:
        t, p = statistics.median(results["transduce"][k]), statistics.median(results["torch"][k])
        summary[k] = {"transduce": round(t, 3), "torch": round(p, 3), "ratio": round(t / p, 3)}
    print(json.dumps({"summary": summary, "units": {"train_step": "tgt tokens/s", "greedy": "ms per step"}}))


def corpus(args, env):
    if not args.tokenizer:
        raise SystemExit("--corpus needs --tokenizer (a model's tokenizer.json)")
    Path(args.work).mkdir(parents=True, exist_ok=True)
    batches = Path(args.work) / "corpus-batches.jsonl"
    rates = {"transduce": [], "torch": []}
    for r in range(args.rounds):
        [fig] = run([args.binary, "bench", "train-corpus", "--src", args.corpus[0], "--tgt", args.corpus[1],
                     "--tokenizer", args.tokenizer, "--preset", args.preset, "--max-tokens", str(args.max_tokens),
                     "--batches", str(args.batches), "--write-batches", str(batches)]
                    + (["--workers", str(args.workers)] if args.workers else []), env)
        print(json.dumps({"round": r, **fig}), flush=True)
        rates["transduce"].append(fig["tgt_tokens_per_s"])
        [tfig] = run([sys.executable, str(ROOT / "bench" / "torch_corpus.py"), str(batches),
                      "--vocab", str(fig["vocab"])] + TORCH_FLAGS[args.preset], env)
        print(json.dumps({"round": r, **tfig}), flush=True)
        rates["torch"].append(tfig["tgt_tokens_per_s"])
    t, p = statistics.median(rates["transduce"]), statistics.median(rates["torch"])
    print(json.dumps({"summary": {"preset": args.preset, "max_tokens": args.max_tokens, "train_corpus": {
        "transduce": round(t, 1), "torch": round(p, 1), "ratio": round(t / p, 3)}},
        "units": {"train_corpus": "tgt tokens/s"}}))


if __name__ == "__main__":
    main()
