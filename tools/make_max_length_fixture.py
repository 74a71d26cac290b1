#!/usr/bin/env python3
"""Writes tests/fixtures/hf_marian/max_length.json: what `generate(max_length=L)` returns for the
tiny Marian fixture on lines that run into the length cap (a random model never says EOS), for
greedy and beam search, so the test can check how transduce's `--max-len` maps onto it:
`max_length` counts the decoder start token and the EOS, `--max-len` neither (max_len = L - 2).

    .venv-hf/bin/python tools/make_max_length_fixture.py     # tools/requirements-hf.txt
"""

import json
from pathlib import Path

import torch
from transformers import MarianMTModel, MarianTokenizer

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "hf_marian"


def main():
    torch.set_num_threads(1)
    tok = MarianTokenizer.from_pretrained(FIXTURES / "tiny")
    model = MarianMTModel.from_pretrained(FIXTURES / "tiny").eval()
    lines = (FIXTURES / "corpus.txt").read_text(encoding="utf-8").splitlines()[:8]
    cases = []
    for max_length in [4, 6, 12]:
        for beams in [1, 4]:
            outputs = []
            for line in lines:
                inputs = tok([line], return_tensors="pt")
                with torch.no_grad():
                    seq = model.generate(**inputs, num_beams=beams, do_sample=False, max_length=max_length)
                outputs.append(seq[0].tolist())
            cases.append({"max_length": max_length, "num_beams": beams, "sources": lines, "sequences": outputs})
    (FIXTURES / "max_length.json").write_text(json.dumps(cases, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
