#!/usr/bin/env python3
"""The Python package's overhead, and CTranslate2's Python API as the peer, on the same weights.

    .venv-python/bin/python bench/compare_python.py --model ../shared/models/marian-fren-s \\
        --src ../shared/data/multi30k/test_2016_flickr.fr.gz --rounds 3

Every system translates the same file in chunks of 32 sentences in file order (beam 4, max
length 256, 2 threads), each in its own process, alternating, `--rounds` times; the medians and
their ratios are printed. Target tokens count the EOS; times exclude loading the model and
include tokenizing and detokenizing (text in, text out).

  cli          `transduce translate --window 32 --threads 2` (its own tokens/s line)
  python       `Translator(threads=2).translate(chunk, beam=4)` per chunk
  python-file  `Translator(threads=2).translate_file(..., window=32)`
  ct2-intra    CTranslate2 `translate_batch(chunk, beam_size=4)`, intra_threads=2
  ct2-inter    the same with inter_threads=2 and the chunks submitted asynchronously

CTranslate2 runs under `--ct2-python` (default .venv-bench, bench/requirements.txt) on the model
converted by `ct2-transformers-converter` into bench/work/<model>-ct2 (once).
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHUNK, BEAM, MAX_LEN = 32, 4, 256


def read_lines(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def chunks(lines):
    return [lines[i:i + CHUNK] for i in range(0, len(lines), CHUNK)]


def run_python(model, src, out):
    import transduce

    t = transduce.Translator(model, threads=2)
    lines = read_lines(src)
    t.translate(lines[:CHUNK], beam=BEAM, max_len=MAX_LEN)  # warm-up
    texts, tokens = [], 0
    start = time.perf_counter()
    for chunk in chunks(lines):
        for r in t.translate(chunk, beam=BEAM, max_len=MAX_LEN):
            texts.append(r.text)
            tokens += len(r.tokens) + 1
    seconds = time.perf_counter() - start
    Path(out).write_text("".join(x + "\n" for x in texts), encoding="utf-8")
    return {"tokens": tokens, "seconds": seconds}


def run_python_file(model, src, out):
    import transduce

    t = transduce.Translator(model, threads=2)
    t.translate(read_lines(src)[:CHUNK], beam=BEAM, max_len=MAX_LEN)  # warm-up
    start = time.perf_counter()
    report = t.translate_file(src, out, window=CHUNK, beam=BEAM, max_len=MAX_LEN)
    return {"tokens": report["target_tokens"], "seconds": time.perf_counter() - start}


def run_ct2(ct2_dir, spm, src, out, inter):
    import ctranslate2
    import sentencepiece

    threads = dict(inter_threads=2, intra_threads=1) if inter else dict(inter_threads=1, intra_threads=2)
    tr = ctranslate2.Translator(ct2_dir, device="cpu", compute_type="float32", **threads)
    sp = sentencepiece.SentencePieceProcessor(model_file=spm)
    lines = read_lines(src)

    def translate(batches):
        tokenized = [[p + ["</s>"] for p in sp.encode(b, out_type=str)] for b in batches]
        if inter:
            pending = [tr.translate_batch(b, beam_size=BEAM, max_decoding_length=MAX_LEN, asynchronous=True)
                       for b in tokenized]
            results = [[r.result() for r in p] for p in pending]
        else:
            results = [tr.translate_batch(b, beam_size=BEAM, max_decoding_length=MAX_LEN) for b in tokenized]
        hyps = [r.hypotheses[0] for batch in results for r in batch]
        return [sp.decode(h) for h in hyps], sum(len(h) + 1 for h in hyps)

    translate(chunks(lines[:CHUNK]))  # warm-up
    start = time.perf_counter()
    texts, tokens = translate(chunks(lines))
    seconds = time.perf_counter() - start
    Path(out).write_text("".join(x + "\n" for x in texts), encoding="utf-8")
    return {"tokens": tokens, "seconds": seconds}


def run_cli(binary, model, src, out):
    done = subprocess.run(
        [binary, "translate", "-m", model, "--input", src, "--output", out, "--beam", str(BEAM),
         "--max-len", str(MAX_LEN), "--window", str(CHUNK), "--threads", "2"],
        capture_output=True, text=True, check=True)
    # "translated N lines, T target tokens (EOS included) in S s: R tokens/s"
    line = [l for l in done.stderr.splitlines() if l.startswith("translated ")][-1]
    words = line.replace(",", "").split()
    return {"tokens": int(words[3]), "seconds": float(words[9])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--systems", default="cli,python,python-file,ct2-intra,ct2-inter")
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "transduce"))
    ap.add_argument("--ct2-python", default=str(ROOT / ".venv-bench" / "bin" / "python"))
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "work")
    ap.add_argument("--run", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    model = os.path.abspath(a.model)
    ct2_dir = a.work / (Path(model).name + "-ct2")
    if a.run:  # one measurement in this process
        if a.run == "python":
            result = run_python(model, a.src, a.out)
        elif a.run == "python-file":
            result = run_python_file(model, a.src, a.out)
        else:
            result = run_ct2(str(ct2_dir), os.path.join(model, "source.spm"), a.src, a.out, a.run == "ct2-inter")
        print(json.dumps(result))
        return
    systems = a.systems.split(",")
    if any(s.startswith("ct2") for s in systems) and not ct2_dir.exists():
        converter = Path(a.ct2_python).parent / "ct2-transformers-converter"
        subprocess.run([str(converter), "--model", model, "--output_dir", str(ct2_dir)], check=True)
    a.work.mkdir(parents=True, exist_ok=True)
    results = {s: [] for s in systems}
    for r in range(a.rounds):
        for s in systems:
            out = str(a.work / f"python-bench.{s}.txt")
            if s == "cli":
                m = run_cli(a.binary, model, a.src, out)
            else:
                python = a.ct2_python if s.startswith("ct2") else sys.executable
                done = subprocess.run([python, __file__, "--model", model, "--src", a.src, "--work", str(a.work),
                                       "--run", s, "--out", out], capture_output=True, text=True)
                if done.returncode != 0:
                    sys.exit(f"{s} failed:\n{done.stderr}")
                m = json.loads(done.stdout.splitlines()[-1])
            m["tok_per_s"] = m["tokens"] / m["seconds"]
            results[s].append(m)
            print(f"round {r + 1} {s:12} {m['tokens']:6d} tokens {m['seconds']:7.2f} s {m['tok_per_s']:8.1f} tokens/s",
                  flush=True)
    median = {s: statistics.median(m["tok_per_s"] for m in ms) for s, ms in results.items()}
    print(f"\nmedian target tokens/s (beam {BEAM}, chunks of {CHUNK}, 2 threads, {a.rounds} rounds):")
    for s, v in median.items():
        print(f"  {s:12} {v:8.1f}")
    if "cli" in median:
        for s in ("python", "python-file"):
            if s in median:
                print(f"  {s} / cli = {median[s] / median['cli']:.3f}")
    ct2 = {s: v for s, v in median.items() if s.startswith("ct2")}
    if ct2:
        best = max(ct2, key=ct2.get)
        for s in ("python", "cli"):
            if s in median:
                print(f"  {s} / {best} (CTranslate2's better setting) = {median[s] / ct2[best]:.3f}")
    outputs = {s: (a.work / f"python-bench.{s}.txt").read_text(encoding="utf-8") for s in systems}
    if "cli" in outputs:
        for s in ("python", "python-file"):
            if s in outputs:
                print(f"  {s} output equals the CLI's: {outputs[s] == outputs['cli']}")


if __name__ == "__main__":
    main()
