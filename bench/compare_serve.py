#!/usr/bin/env python3
"""Serving side by side: `transduce serve` vs LibreTranslate (PyPI, offline) on the same Marian
model, loopback only: 1, 8 and 32 concurrent clients send one-sentence LibreTranslate requests
(test_2016_flickr, in turn) for a fixed time; both servers run at the same beam size (4, argos'
default). By default (`--search libretranslate`) transduce runs the same search as LibreTranslate
(CTranslate2's stopping rule, argos' length penalty 0.2); `--search transduce` keeps transduce's
own defaults (GNMT penalty 0.6, the heuristic stopping rule; the exact rule before), which
decode more steps. Prints
throughput (sentences/s), p50/p99 latency, errors, each server's peak RSS and CPU time per
sentence, the ratios, whether transduce's answers equal `transduce translate` with the same
options, and how many equal LibreTranslate's.

    python3 -m venv .venv-lt && .venv-lt/bin/pip install -r bench/requirements-libretranslate.txt
    cargo build --release
    .venv-lt/bin/python bench/compare_serve.py --model ../shared/models/marian-fren-s --pair fr-en

The model is converted for CTranslate2 with `ct2-transformers-converter` (bench/requirements.txt,
in .venv-bench) and installed as a local argos-translate package. LibreTranslate runs through
bench/libretranslate_offline.py: everything as shipped except MiniSBD's sentence splitter, whose
model would be downloaded from GitHub (see that file).
"""
import argparse
import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(port, proc, seconds=180):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server on port {port} exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/languages")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"no server on port {port} after {seconds} s")


def peak_rss_mib(pid):
    """The process' peak resident set (VmHWM), MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# transduce flags per search: argos-translate calls CTranslate2's translate_batch with
# length_penalty 0.2 (CTranslate2's rule: a sentence stops once beam-size hypotheses have
# finished; the penalty divides by length ** 0.2)
SEARCH = {
    "libretranslate": "--beam-rule ctranslate2 --length-penalty power --alpha 0.2",
    "transduce": "",
}


def cpu_seconds(pid):
    """CPU time (user + system) the process has used so far, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def argos_package(model, ct2_model, packages, source, target):
    """An installed argos-translate package directory for the converted model."""
    pkg = packages / f"translate-{source}_{target}-transduce-bench"
    if pkg.exists():
        shutil.rmtree(pkg)
    pkg.mkdir(parents=True)
    shutil.copytree(ct2_model, pkg / "model")
    # a shared SentencePiece vocabulary: argos encodes and decodes with this one model
    shutil.copy(model / "source.spm", pkg / "sentencepiece.model")
    names = {"fr": "French", "en": "English", "de": "German", "cs": "Czech"}
    metadata = {
        "package_version": "1.0", "argos_version": "1.0", "from_code": source, "to_code": target,
        "from_name": names.get(source, source), "to_name": names.get(target, target), "type": "translate",
    }
    (pkg / "metadata.json").write_text(json.dumps(metadata))


def client(port, path, sentences, start, stop_at, source, target, out):
    """One client: requests in turn until stop_at; appends (latency s, status, index, text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    i = start
    while time.time() < stop_at:
        body = json.dumps({"q": sentences[i % len(sentences)], "source": source, "target": target})
        t0 = time.perf_counter()
        try:
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            status = r.status
            text = json.loads(data).get("translatedText") if status == 200 else None
        except (OSError, http.client.HTTPException, ValueError):
            status, text = -1, None
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        out.append((time.perf_counter() - t0, status, i % len(sentences), text))
        i += 1


def load(port, sentences, clients, seconds, source, target):
    results = []
    stop_at = time.time() + seconds
    threads = [
        threading.Thread(target=client, args=(port, "/translate", sentences, c * 997, stop_at, source, target, results))
        for c in range(clients)
    ]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - t0
    ok = [r for r in results if r[1] == 200]
    lat = sorted(r[0] for r in ok)
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")
    return {
        "clients": clients, "requests": len(results), "errors": len(results) - len(ok),
        "sentences_per_s": len(ok) / wall, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
    }, results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="a Hugging Face Marian directory")
    ap.add_argument("--pair", default="fr-en")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "multi30k")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--seconds", type=float, default=30.0, help="per client count and server")
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "transduce")
    ap.add_argument("--converter", default=str(ROOT / ".venv-bench" / "bin" / "ct2-transformers-converter"))
    ap.add_argument("--ct2-model", type=Path, help="the model already converted for CTranslate2 (e.g. by "
                    "`.venv-ct2/bin/python tools/ct2_marian.py --model HF_DIR --save DIR`, no PyTorch needed); "
                    "default: convert with --converter")
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "work" / "serve")
    ap.add_argument("--systems", default="transduce,libretranslate")
    ap.add_argument("--search", choices=sorted(SEARCH), default="libretranslate",
                    help="transduce's search: LibreTranslate's (default) or transduce's own defaults")
    ap.add_argument("--transduce-args", default="", help="more `transduce serve` flags, e.g. '--workers 1'")
    args = ap.parse_args()
    args.transduce_args = " ".join([SEARCH[args.search], args.transduce_args]).strip()
    source, target = args.pair.split("-")
    sentences = [l.strip() for l in gzip.open(args.data / f"test_2016_flickr.{source}.gz", "rt", encoding="utf-8")]
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    systems = args.systems.split(",")

    servers = {}
    if "libretranslate" in systems:
        ct2 = args.ct2_model or work / "ct2-fp32"
        if not ct2.exists():
            subprocess.run([args.converter, "--model", str(args.model), "--output_dir", str(ct2)], check=True)
        packages = work / "argos-packages"
        argos_package(args.model, ct2, packages, source, target)
        home = work / "lt-home"
        home.mkdir(exist_ok=True)
        port = free_port()
        env = dict(os.environ, HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CACHE_HOME=str(home / "cache"),
                   XDG_CONFIG_HOME=str(home / "config"), ARGOS_BEAM_SIZE=str(args.beam))
        cmd = [sys.executable, str(ROOT / "bench" / "libretranslate_offline.py"), "--packages", str(packages), "--",
               "--host", "127.0.0.1", "--port", str(port), "--load-only", f"{source},{target}",
               "--char-limit", "5000", "--req-limit", "-1", "--batch-limit", "-1", "--disable-web-ui"]
        servers["libretranslate"] = (cmd, env, port)
    if "transduce" in systems:
        models = work / "transduce-models"
        models.mkdir(exist_ok=True)
        link = models / args.pair
        if not link.exists():
            link.symlink_to(args.model.resolve())
        port = free_port()
        cmd = [str(args.binary), "serve", "--models", str(models), "--host", "127.0.0.1", "--port", str(port),
               "--beam", str(args.beam), "--queue", "100000"] + args.transduce_args.split()
        servers["transduce"] = (cmd, dict(os.environ, RUST_LOG="warn"), port)

    report = {}
    answers = {}
    for name, (cmd, env, port) in servers.items():
        log = open(work / f"{name}.log", "w")
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_up(port, proc)
            # one warm-up request, then each client count
            load(port, sentences[:4], 1, 1.0, source, target)
            report[name] = []
            for n in [int(c) for c in args.clients.split(",")]:
                cpu0 = cpu_seconds(proc.pid)
                figures, results = load(port, sentences, n, args.seconds, source, target)
                # the server's own cores per answer: steadier than the rate on a shared machine
                ok = sum(1 for r in results if r[1] == 200)
                figures["server_cpu_ms_per_sentence"] = (cpu_seconds(proc.pid) - cpu0) * 1000 / max(ok, 1)
                figures["peak_rss_mib"] = round(peak_rss_mib(proc.pid), 1)
                report[name].append(figures)
                print(json.dumps({"system": name, **{k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}}), flush=True)
                for _, status, i, text in results:
                    if status == 200:
                        answers.setdefault(name, {}).setdefault(i, set()).add(text)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()

    if "transduce" in answers:
        # the server's answers against `transduce translate` with the same options
        got = answers["transduce"]
        indices = sorted(got)
        src = work / "check.src"
        src.write_text("".join(sentences[i] + "\n" for i in indices), encoding="utf-8")
        out = subprocess.run([str(args.binary), "translate", "-m", str(args.model), "--beam", str(args.beam), "--input", str(src)]
                             + args.transduce_args.split(),
                             check=True, capture_output=True, text=True).stdout.splitlines()
        differ = [i for i, line in zip(indices, out) if got[i] != {line}]
        print(json.dumps({"check": "transduce serve == transduce translate", "sentences": len(indices), "differ": len(differ),
                          "examples": [(sentences[i], sorted(got[i])) for i in differ[:3]]}, ensure_ascii=False))
    if {"transduce", "libretranslate"} <= set(answers):
        both = sorted(set(answers["transduce"]) & set(answers["libretranslate"]))
        same = [i for i in both if answers["transduce"][i] == answers["libretranslate"][i]]
        differ = [i for i in both if i not in set(same)]
        print(json.dumps({"check": "transduce == libretranslate", "search": args.search, "sentences": len(both),
                          "equal": len(same), "examples": [(sentences[i], sorted(answers["transduce"][i]),
                                                            sorted(answers["libretranslate"][i])) for i in differ[:3]]},
                         ensure_ascii=False))
    if {"transduce", "libretranslate"} <= set(report):
        for t, l in zip(report["transduce"], report["libretranslate"]):
            print(json.dumps({
                "clients": t["clients"],
                "throughput_ratio": round(t["sentences_per_s"] / l["sentences_per_s"], 2) if l["sentences_per_s"] else None,
                "transduce_p99_ms": round(t["p99_ms"], 1), "libretranslate_p50_ms": round(l["p50_ms"], 1),
                "p50_ratio": round(l["p50_ms"] / t["p50_ms"], 2) if t["p50_ms"] else None,
                "errors": [t["errors"], l["errors"]],
            }))


if __name__ == "__main__":
    main()
