#!/usr/bin/env python3
"""Wall time of a corpus through transduce.ray with 1 and 2 actors on this machine, beside the
same translation without Ray, and what Ray adds.

    .venv-python/bin/python bench/ray_scale.py --model ../shared/models/marian-fren-s \\
        --src ../shared/data/multi30k/test_2016_flickr.fr.gz --rounds 2

Every run translates the whole file (beam 4) and writes it; times are wall-clock and include
loading the model (once per actor under Ray). "plain" is `Translator.translate_file` without Ray
in windows of `--batch-size` lines (the batches Ray's actors get), so "ray 1x2" minus "plain"
is what Ray adds for one actor (starting it, reading into the object store, moving batches);
"plain w2000" is the command line's default window (sorting 2000 lines by length batches with
less padding). All outputs are checked equal to `transduce translate`'s.
"""
import argparse
import statistics
import subprocess
import time
from pathlib import Path

import ray

import transduce
import transduce.ray

ROOT = Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "transduce"))
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "work")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    reference = a.work / "ray-bench.cli.txt"
    subprocess.run([a.binary, "translate", "-m", a.model, "--input", a.src, "--output", str(reference),
                    "--beam", "4"], check=True, capture_output=True)
    expected = reference.read_text(encoding="utf-8")

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    init_s = time.perf_counter() - start

    def plain(window):
        def run(out):
            t = transduce.Translator(a.model, threads=2)
            t.translate_file(a.src, out, beam=4, window=window)

        return run

    def on_ray(actors):
        return lambda out: transduce.ray.translate_file(
            a.src, out, a.model, actors=actors, threads_per_actor=2 // actors, batch_size=a.batch_size, beam=4)

    systems = {"plain w2000": plain(2000), "plain 1x2": plain(a.batch_size), "ray 1x2": on_ray(1), "ray 2x1": on_ray(2)}
    times = {name: [] for name in systems}
    for r in range(a.rounds):
        for name, run in systems.items():
            out = a.work / f"ray-bench.{name.replace(' ', '-')}.txt"
            start = time.perf_counter()
            run(out)
            seconds = time.perf_counter() - start
            same = out.read_text(encoding="utf-8") == expected
            times[name].append(seconds)
            print(f"round {r + 1} {name:11} {seconds:7.2f} s  output equals the CLI's: {same}", flush=True)
            assert same, f"{name}: the output differs from transduce translate's"
    ray.shutdown()
    median = {name: statistics.median(ts) for name, ts in times.items()}
    lines = len(expected.splitlines())
    print(f"\n{lines} lines, beam 4, batch {a.batch_size}, median of {a.rounds} (ray.init: {init_s:.1f} s, not included)")
    for name, s in median.items():
        print(f"  {name:11} {s:7.2f} s  {lines / s:6.1f} lines/s")
    print(f"  Ray's overhead with one actor (ray 1x2 - plain): {median['ray 1x2'] - median['plain 1x2']:.2f} s")
    print(f"  2 actors x 1 thread vs 1 actor x 2 threads: {median['ray 1x2'] / median['ray 2x1']:.2f}x")


if __name__ == "__main__":
    main()
