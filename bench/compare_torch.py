#!/usr/bin/env python3
"""Side-by-side cfg S figures: transduce vs PyTorch (../shared/bench/torch_ref.py), alternating
runs in one session, reporting each system's median over rounds and the ratio of medians.

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -r bench/requirements.txt
    cargo build --release
    .venv-bench/bin/python bench/compare_torch.py --rounds 3 [--preset base] [--figure train]

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
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="2")
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


if __name__ == "__main__":
    main()
