#!/usr/bin/env python3
"""transduce vs CTranslate2 at NLLB-200-distilled-600M's shapes (d 1024, 16 heads, 12 + 12 layers,
FFN 4096, vocabulary 256,206): tokens/s with beam 4 at batch 16 and greedy at batch 1, f32 and int8,
and peak RSS, every system forced to write the same number of tokens.

    .venv-ct2/bin/python bench/compare_nllb.py --make bench/work/nllb-600m-random
    .venv-ct2/bin/python bench/compare_nllb.py --model bench/work/nllb-600m-random \\
        --src ../shared/data/multi30k/test_2016_flickr.fr.gz

`--make` writes random weights as a Hugging Face M2M100ForConditionalGeneration checkpoint with numpy
(the tokenizer is the NLLB fixture's, whose 506 entries index the first rows of the 256,206-row
table) and its CTranslate2 conversions (`-ct2`, `-ct2-int8`) with tools/ct2_m2m100.py: no PyTorch
or transformers, only tools/requirements-ct2.txt. Each measurement runs in its own process
(peak RSS from wait4), on the first `--lines` source lines (16 for the beam batch, `--greedy-lines`
one at a time); tokens/s counts output tokens, the forced target-language token excluded.
CTranslate2 runs with intra_threads=2 and with inter_threads=2; its better figure is the
comparison's. transduce's load-only peak RSS is its run on an empty input. Neither system returns
scores (transduce's `--scores omit`, CTranslate2's default `return_scores=False`).

Each configuration runs `--repeats` times (default 3), the systems' runs interleaved round by round
so that a slow spell of the machine falls on both; a configuration's figure is its median time (and
its largest peak RSS), and every run prints its own tokens/s. `--only "beam4 batch16/int8"`
(repeatable) measures only the named mode/precision.
"""

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "hf_m2m100" / "nllb"
SOURCE, TARGET = "fra_Latn", "eng_Latn"


def make(out: Path, binary: Path):
    """Random weights as M2M100ForConditionalGeneration's `save_pretrained` writes them (normal(0, 0.02)
    linears and table, zero biases and padding row, unit layer norms; numpy, no PyTorch), then the
    CTranslate2 conversions by tools/ct2_m2m100.py."""
    import numpy as np
    from safetensors.numpy import save_file

    config = json.loads((FIXTURE / "config.json").read_text())
    config.update(vocab_size=256206, d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
                  decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096,
                  max_position_embeddings=1024, init_std=0.02)
    d, ffn, std = config["d_model"], config["encoder_ffn_dim"], config["init_std"]
    rng = np.random.default_rng(0)
    normal = lambda *shape: (rng.standard_normal(shape, dtype=np.float32) * std)
    w = {}

    def lin(name, rows, cols):
        w[name + ".weight"], w[name + ".bias"] = normal(rows, cols), np.zeros(rows, np.float32)

    def norm(name):
        w[name + ".weight"], w[name + ".bias"] = np.ones(d, np.float32), np.zeros(d, np.float32)

    def attn(name):
        for part in ["q_proj", "k_proj", "v_proj", "out_proj"]:
            lin(f"{name}.{part}", d, d)

    table = normal(config["vocab_size"], d)
    table[config["pad_token_id"]] = 0
    w["model.shared.weight"] = table
    for side_name, cross in [("encoder", False), ("decoder", True)]:
        for i in range(config[side_name + "_layers"]):
            p = f"model.{side_name}.layers.{i}"
            attn(p + ".self_attn")
            norm(p + ".self_attn_layer_norm")
            if cross:
                attn(p + ".encoder_attn")
                norm(p + ".encoder_attn_layer_norm")
            lin(p + ".fc1", ffn, d)
            lin(p + ".fc2", d, ffn)
            norm(p + ".final_layer_norm")
        norm(f"model.{side_name}.layer_norm")
    out.mkdir(parents=True, exist_ok=True)
    save_file(w, str(out / "model.safetensors"), metadata={"format": "pt"})
    del w, table
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for name in ["tokenizer.json", "tokenizer_config.json", "sentencepiece.bpe.model", "generation_config.json"]:
        shutil.copy(FIXTURE / name, out / name)
    for suffix, quant in [("-ct2", []), ("-ct2-int8", ["--quantization", "int8"])]:
        target = out.parent / (out.name + suffix)
        subprocess.run([sys.executable, str(ROOT / "tools" / "ct2_m2m100.py"), "--model", str(out), "--save",
                        str(target), *quant], check=True)
    # transduce's int8 model, as CTranslate2's: quantized once and stored
    subprocess.run([str(binary), "quantize", "-m", str(out), "--out", str(out.parent / (out.name + "-int8"))],
                   check=True)
    print(f"wrote {out}, its CTranslate2 conversions and its transduce int8 directory")


def read_lines(path: Path, n: int):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [next(f).rstrip("\n") for _ in range(n)]


def run_child(args, stdin=""):
    """Runs a command; returns (stdout, stderr, seconds, peak RSS in MiB) of that process alone."""
    start = time.perf_counter()
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdin.write(stdin)
    p.stdin.close()
    out, err = p.stdout.read(), p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{err[-3000:]}")
    return out, err, time.perf_counter() - start, usage.ru_maxrss / 1024


def transduce(binary, model, lines, beam, length, batch_tokens, workers):
    args = [str(binary), "translate", "-m", str(model), "--source-lang", SOURCE, "--target-lang", TARGET,
            "--min-len", str(length), "--max-len", str(length), "--max-len-ratio", "1000", "--max-tokens",
            str(batch_tokens), "--format", "jsonl", "--scores", "omit", "--workers", str(workers)]
    args += ["--search", "greedy"] if beam == 1 else ["--beam", str(beam)]
    out, err, _, rss = run_child(args, "".join(l + "\n" for l in lines))
    # the command's own clock, from after loading: "... in X s: ..."
    seconds = float(err.split(" in ")[-1].split(" s")[0])
    tokens = sum(len(json.loads(l)["tokens"]) for l in out.splitlines())
    return tokens, seconds, rss


def budget(lines, beam, batch, workers):
    """transduce's --max-tokens (sentences x beam x (longest source + 1)) for batches of `batch` sentences,
    or, with two workers, of about `batch / 2` (the shorter half of the lines may share one batch)."""
    if batch == 1:
        return 1  # under any sentence's size: each batch holds one sentence
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(FIXTURE / "tokenizer.json"))
    longest = max(len(tok.encode(l).ids) for l in lines)  # [source language] pieces </s>
    return -(-batch // workers) * beam * (longest + 1)


CT2_CHILD = r"""
import json, sys, time, ctranslate2
from tokenizers import Tokenizer
model, tok_dir, beam, length, batch, inter = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "inter"
lines = [l.rstrip("\n") for l in sys.stdin]
tok = Tokenizer.from_file(tok_dir + "/tokenizer.json")
sources = [["fra_Latn"] + tok.encode(l, add_special_tokens=False).tokens + ["</s>"] for l in lines]
threads = dict(inter_threads=2, intra_threads=1) if inter else dict(inter_threads=1, intra_threads=2)
t = ctranslate2.Translator(model, device="cpu", **threads)
chunks = [sources[i:i + batch] for i in range(0, len(sources), batch)]
prefix = lambda n: [["eng_Latn"]] * n
start = time.perf_counter()
kw = dict(beam_size=beam, min_decoding_length=length + 1, max_decoding_length=length + 1)
if inter:
    pending = [t.translate_batch(c, target_prefix=prefix(len(c)), asynchronous=True, max_batch_size=max(1, batch // 2), **kw) for c in chunks]
    results = [r.result() for p in pending for r in p]
else:
    results = [r for c in chunks for r in t.translate_batch(c, target_prefix=prefix(len(c)), **kw)]
seconds = time.perf_counter() - start
tokens = sum(len(r.hypotheses[0]) - 1 for r in results)  # the forced language token excluded
print(json.dumps({"tokens": tokens, "seconds": seconds}))
"""


def ctranslate2(model, lines, beam, length, batch, inter):
    args = [sys.executable, "-c", CT2_CHILD, str(model), str(FIXTURE), str(beam), str(length), str(batch),
            "inter" if inter else "intra"]
    out, _, _, rss = run_child(args, "".join(l + "\n" for l in lines))
    r = json.loads(out)
    return r["tokens"], r["seconds"], rss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--make", type=Path)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--src", type=Path)
    ap.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "transduce")
    ap.add_argument("--length", type=int, default=32)
    ap.add_argument("--lines", type=int, default=16)
    ap.add_argument("--greedy-lines", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", action="append", default=[], help='e.g. "beam4 batch16/int8" (repeatable)')
    args = ap.parse_args()
    if args.make:
        return make(args.make, args.binary)
    lines = read_lines(args.src, max(args.lines, args.greedy_lines))
    weights = (args.model / "model.safetensors").stat().st_size / 2**20
    _, _, _, load_rss = run_child([str(args.binary), "translate", "-m", str(args.model), "--source-lang", SOURCE,
                                   "--target-lang", TARGET], "")
    _, _, _, load_rss8 = run_child([str(args.binary), "translate", "-m", str(args.model), "--source-lang", SOURCE,
                                    "--target-lang", TARGET, "--quantization", "int8"], "")
    int8_dir = args.model.parent / (args.model.name + "-int8")
    _, _, _, stored_rss8 = run_child([str(args.binary), "translate", "-m", str(int8_dir), "--source-lang", SOURCE,
                                      "--target-lang", TARGET], "")
    print(f"f32 weights {weights:.0f} MiB; transduce load-only peak RSS f32 {load_rss:.0f} MiB "
          f"({load_rss / weights:.2f}x), int8 at load {load_rss8:.0f} MiB ({load_rss8 / weights:.2f}x), "
          f"stored int8 ({int8_dir.name}) {stored_rss8:.0f} MiB ({stored_rss8 / weights:.2f}x)")
    rows = []
    for mode, beam, batch, n in [("beam4 batch16", 4, 16, args.lines), ("greedy batch1", 1, 1, args.greedy_lines)]:
        for precision in ["f32", "int8"]:
            if args.only and f"{mode}/{precision}" not in args.only:
                continue
            src = lines[:n]
            # each system's int8 model is quantized once and stored (CTranslate2's -ct2-int8, transduce's -int8)
            model = int8_dir if precision == "int8" else args.model
            # a batch of `batch` sentences: all of them in one batch, or half of them in each of two workers
            # (CTranslate2's inter_threads=2 with max_batch_size=batch/2); at batch 1, one sentence per batch
            ct2_dir = args.model.parent / (args.model.name + ("-ct2-int8" if precision == "int8" else "-ct2"))
            configs = {f"workers {w}": lambda w=w: transduce(args.binary, model, src, beam, args.length,
                                                             budget(src, beam, batch, w), w)
                       for w in [1, 2]}
            configs |= {name: lambda inter=inter: ctranslate2(ct2_dir, src, beam, args.length, batch, inter)
                        for name, inter in [("intra", False), ("inter", True)]}
            runs = {name: [] for name in configs}
            for r in range(args.repeats):
                for name, run in configs.items():
                    runs[name].append(run())
                print(f"  {mode} {precision} round {r + 1}: " + ", ".join(
                    f"{name} {rs[-1][0] / rs[-1][1]:.1f}" for name, rs in runs.items()) + " tok/s", flush=True)
            for name, rs in runs.items():
                assert len({t for t, _, _ in rs}) == 1, f"{name}: different token counts {rs}"
            # per configuration: (tokens, median seconds, largest peak RSS)
            median = {name: (rs[0][0], sorted(s for _, s, _ in rs)[len(rs) // 2], max(m for _, _, m in rs))
                      for name, rs in runs.items()}
            mine = {k: median[k] for k in ["workers 1", "workers 2"]}
            peers = {k: median[k] for k in ["intra", "inter"]}
            mine_best = max(mine, key=lambda k: mine[k][0] / mine[k][1])
            tk, ts, trss = mine[mine_best]
            best = max(peers, key=lambda k: peers[k][0] / peers[k][1])
            ck, cs, crss = peers[best]
            assert tk == ck, f"{mode} {precision}: transduce wrote {tk} tokens, CTranslate2 {ck}"
            row = {"mode": mode, "precision": precision, "tokens": tk, "transduce_tok_s": tk / ts,
                   "transduce_rss_mib": trss, "transduce_threads": mine_best,
                   "transduce_other_tok_s": {k: v[0] / v[1] for k, v in mine.items()}, "ct2_tok_s": ck / cs, "ct2_threads": best, "ct2_rss_mib": crss,
                   "ct2_other_tok_s": {k: v[0] / v[1] for k, v in peers.items()}, "ratio": (tk / ts) / (ck / cs),
                   "runs_tok_s": {k: [t / s for t, s, _ in rs] for k, rs in runs.items()}}
            rows.append(row)
            print(f"{mode:14} {precision:4}: transduce ({mine_best}) {tk / ts:7.1f} tok/s RSS {trss:6.0f} MiB | CTranslate2 "
                  f"({best}) {ck / cs:7.1f} tok/s RSS {crss:6.0f} MiB | ratio {row['ratio']:.2f}x", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
