#!/usr/bin/env python3
"""Translation speed side by side: transduce vs CTranslate2 (fp32, int8) vs transformers, on one
Hugging Face Marian model directory, in alternating rounds, reporting medians, ratios, peak RSS
and the BLEU of every output.

    .venv-bench/bin/pip install -r bench/requirements.txt
    cargo build --release
    .venv-bench/bin/python bench/compare_translate.py --model DIR --data ../shared/data/multi30k --pair fr-en

Each round runs every system in its own process under /usr/bin/time -v (one timed run per mode
after a warm-up): CTranslate2 and transformers through shared/bench/peers/bench_peers.py, transduce
through `transduce bench translate`, which follows the same protocol (test_2016_flickr, all 1000
lines sorted by source length, beam 4 at batch 32; the first 200 lines greedy at batch 1; 2
threads; text in, text out). transduce translates beam batches --streams at a time (default 2,
each on one thread); the `-inter` CTranslate2 systems do the same (inter_threads 2, intra_threads 1),
besides the shared script's intra_threads 2. A speed counts only when that system's BLEU is within 0.2 of
CTranslate2 fp32's (cased, sacrebleu 13a).

Ratios (higher is better for transduce):
  beam4_tok_s   transduce tokens/s / peer tokens/s
  greedy1_ms    peer ms per sentence / transduce ms per sentence
  peak_rss      peer peak RSS / transduce peak RSS
"""
import argparse
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT.parent / "shared" / "bench" / "peers" / "bench_peers.py"
# CTranslate2 with its threads over batches (inter_threads), as transduce's --streams
INTER = ROOT / "bench" / "ct2_inter.py"


def read_lines(path):
    op = gzip.open if str(path).endswith(".gz") else open
    with op(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def peak_rss_mb(path):
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", Path(path).read_text())
    return round(int(m.group(1)) / 1024, 1) if m else None


def convert(model, out, quantization, converter):
    if (out / "model.bin").exists():
        return
    cmd = [converter, "--model", str(model), "--output_dir", str(out), "--copy_files", "source.spm", "target.spm",
           "--force"]
    if quantization:
        cmd += ["--quantization", quantization]
    subprocess.run(cmd, check=True, capture_output=True)


def run_system(system, args, models, src, out):
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), RAYON_NUM_THREADS=str(args.threads))
    time_file = out / f"{system}.time"
    # a peer variant writes under its base name into its own folder, renamed after
    peer_out = out
    if system.startswith("transduce"):
        cmd = [args.binary, "bench", "translate", "-m", str(models[system]), "--src", str(src), "--out", str(out),
               "--name", system, "--runs", "1", "--streams", str(args.streams)]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
    else:
        script, base = PEERS, system
        if system.endswith("-inter"):
            script, base = INTER, system.removesuffix("-inter")
            peer_out = out / system
        cmd = [sys.executable, str(script), "run", "--system", base, "--model", str(models[system]), "--src",
               str(src), "--out", str(peer_out), "--runs", "1", "--threads", str(args.threads)]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
    proc = subprocess.run(["/usr/bin/time", "-v", "-o", str(time_file)] + cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{system} failed:\n{proc.stderr[-3000:]}")
    if peer_out != out:
        for f in peer_out.iterdir():
            f.replace(out / f.name.replace(base, system, 1))
    rec = json.loads((out / f"{system}.json").read_text())
    return {"beam4_tok_s": rec["beam"]["tok_per_s"], "beam4_s": rec["beam"]["median_s"],
            "greedy1_ms": rec["greedy1"]["ms_per_sent"], "greedy1_tok_s": rec["greedy1"]["tok_per_s"],
            "peak_rss_mb": peak_rss_mb(time_file)}


def bleu(hyps, refs):
    import sacrebleu
    return (round(sacrebleu.BLEU().corpus_score(hyps, [refs]).score, 2),
            round(sacrebleu.BLEU(lowercase=True).corpus_score(hyps, [refs]).score, 2))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path, help="Hugging Face Marian directory")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("TRANSDUCE_DATA", ROOT.parent / "shared" / "data" / "multi30k")))
    ap.add_argument("--pair", default="fr-en", help="source-target language codes of test_2016_flickr")
    ap.add_argument("--work", type=Path, default=None, help="converted models and outputs (default bench/work/<model>)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--systems", default="transduce,ct2-fp32,ct2-fp32-inter,ct2-int8,ct2-int8-inter,hf",
                    help="a `-inter` CTranslate2 spreads its threads over batches (inter_threads)")
    ap.add_argument("--streams", type=int, default=2,
                    help="transduce's --streams: beam batches translated at once (greedy is one sentence)")
    ap.add_argument("--hf-rounds", type=int, default=1, help="transformers is slow: run it in this many rounds")
    ap.add_argument("--transduce-int8", type=Path, default=None, help="a `transduce quantize`d model directory")
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "transduce"))
    ap.add_argument("--limit", type=int, default=0, help="only the first N lines (smoke tests)")
    args = ap.parse_args()

    src_lang, tgt_lang = args.pair.split("-")
    src = args.data / f"test_2016_flickr.{src_lang}.gz"
    refs = read_lines(args.data / f"test_2016_flickr.{tgt_lang}.gz")
    work = args.work or ROOT / "bench" / "work" / args.model.resolve().name
    work.mkdir(parents=True, exist_ok=True)
    converter = str(Path(sys.executable).parent / "ct2-transformers-converter")
    systems = args.systems.split(",")
    models = {"transduce": args.model, "hf": args.model, "ct2-fp32": work / "ct2-fp32", "ct2-int8": work / "ct2-int8",
              "ct2-fp32-inter": work / "ct2-fp32", "ct2-int8-inter": work / "ct2-int8"}
    if args.transduce_int8:
        models["transduce-int8"] = args.transduce_int8
        systems.insert(1, "transduce-int8")
    if {"ct2-fp32", "ct2-fp32-inter"} & set(systems):
        convert(args.model, models["ct2-fp32"], None, converter)
    if {"ct2-int8", "ct2-int8-inter"} & set(systems):
        convert(args.model, models["ct2-int8"], "int8", converter)

    figures = {s: [] for s in systems}
    for r in range(args.rounds):
        out = work / f"round{r}"
        out.mkdir(exist_ok=True)
        for s in systems:
            if s == "hf" and r >= args.hf_rounds:
                continue
            fig = run_system(s, args, models, src, out)
            figures[s].append(fig)
            print(json.dumps({"round": r, "system": s, **fig}), flush=True)

    first = work / "round0"
    summary = {}
    for s in systems:
        beam = read_lines(first / f"{s}.beam4.txt")
        greedy = read_lines(first / f"{s}.greedy1.txt")
        med = {k: statistics.median(f[k] for f in figures[s]) for k in figures[s][0]}
        med["peak_rss_mb"] = max(f["peak_rss_mb"] for f in figures[s])
        b, blc = bleu(beam, refs[:len(beam)])
        g, glc = bleu(greedy, refs[:len(greedy)])
        summary[s] = {**{k: round(v, 2) for k, v in med.items()}, "bleu_beam4": b, "bleu_beam4_lc": blc,
                      "bleu_greedy1": g, "bleu_greedy1_lc": glc, "rounds": len(figures[s])}
    if "ct2-fp32" in summary:
        anchor = summary["ct2-fp32"]
        ct2_beam = read_lines(first / "ct2-fp32.beam4.txt")
        for s, v in summary.items():
            v["bleu_counts"] = (abs(v["bleu_beam4"] - anchor["bleu_beam4"]) <= 0.2
                                and abs(v["bleu_greedy1"] - anchor["bleu_greedy1"]) <= 0.2)
            mine = read_lines(first / f"{s}.beam4.txt")
            v["beam4_lines_as_ct2_fp32"] = sum(a == b for a, b in zip(mine, ct2_beam))
    ratios = {}
    for mine in [s for s in systems if s.startswith("transduce")]:
        for peer in [s for s in systems if not s.startswith("transduce")]:
            a, p = summary[mine], summary[peer]
            ratios[f"{mine} vs {peer}"] = {
                "beam4_tok_s": round(a["beam4_tok_s"] / p["beam4_tok_s"], 3),
                "greedy1_ms": round(p["greedy1_ms"] / a["greedy1_ms"], 3),
                "peak_rss": round(p["peak_rss_mb"] / a["peak_rss_mb"], 3),
            }
    print(json.dumps({"summary": summary, "ratios": ratios}, indent=1))
    (work / "summary.json").write_text(json.dumps({"summary": summary, "ratios": ratios}, indent=1))


if __name__ == "__main__":
    main()
