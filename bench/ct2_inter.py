#!/usr/bin/env python3
"""shared/bench/peers/bench_peers.py with CTranslate2 spreading its threads over batches instead of
inside each (`inter_threads=T, intra_threads=1`), the counterpart of `transduce bench translate
--streams T`; everything else is that script's protocol. Arguments are bench_peers.py's `run`.

    .venv-bench/bin/python bench/ct2_inter.py run --system ct2-fp32 --model CT2_DIR --src SRC --out OUT
"""
import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(os.environ.get("TRANSDUCE_PEERS", ROOT.parent / "shared" / "bench" / "peers" / "bench_peers.py"))

spec = importlib.util.spec_from_file_location("bench_peers", PEERS)
peers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peers)


class InterCT2(peers.CT2):
    def __init__(self, model_dir, spm_path, threads, max_length, compute_type):
        import ctranslate2
        import sentencepiece as spm
        self.tr = ctranslate2.Translator(model_dir, device="cpu", compute_type=compute_type,
                                         inter_threads=threads, intra_threads=1)
        self.sp = spm.SentencePieceProcessor(model_file=spm_path)
        self.max_length = max_length
        self.info = {"ctranslate2": ctranslate2.__version__, "compute_type": self.tr.compute_type,
                     "intra_threads": 1, "inter_threads": threads}


peers.CT2 = InterCT2
if __name__ == "__main__":
    sys.exit(peers.main())
