#!/usr/bin/env python3
"""Translate a file with a Hugging Face Marian directory through transformers and CTranslate2.

    .venv-hf/bin/python tools/hf_parity.py --model DIR --input src.txt --out results.json \
        [--beam 4] [--max-new-tokens 64] [--systems hf,ct2]

Writes one JSON object: {"hf": {"greedy": [...], "beam": [...]}, "ct2": {...}} with the detokenized
translation of every input line, in input order. CTranslate2 gets the model through
`ct2-transformers-converter` (its Python API), as a user would convert it. Greedy runs at batch 1
semantics (batches padded by the library); beam search with `--beam` hypotheses, HF's default
length penalty 1.0 and CTranslate2's defaults.
"""

import argparse
import json
import tempfile

import torch


def hf(model_dir, lines, beam, max_new_tokens, batch=32):
    from transformers import MarianMTModel, MarianTokenizer

    tok = MarianTokenizer.from_pretrained(model_dir)
    model = MarianMTModel.from_pretrained(model_dir).eval()
    out = {}
    for name, beams in [("greedy", 1), ("beam", beam)]:
        texts = []
        for i in range(0, len(lines), batch):
            inputs = tok(lines[i:i + batch], return_tensors="pt", padding=True)
            with torch.no_grad():
                seqs = model.generate(**inputs, num_beams=beams, do_sample=False, max_new_tokens=max_new_tokens)
            texts += tok.batch_decode(seqs, skip_special_tokens=True)
        out[name] = texts
    return out


def ct2(model_dir, lines, beam, max_new_tokens, batch=32):
    import ctranslate2
    from transformers import MarianTokenizer

    tok = MarianTokenizer.from_pretrained(model_dir)
    with tempfile.TemporaryDirectory() as converted:
        ctranslate2.converters.TransformersConverter(model_dir).convert(converted, force=True)
        translator = ctranslate2.Translator(converted, device="cpu", inter_threads=1, intra_threads=2)
        sources = [tok.convert_ids_to_tokens(tok(line)["input_ids"]) for line in lines]
        out = {}
        for name, beams in [("greedy", 1), ("beam", beam)]:
            results = translator.translate_batch(sources, beam_size=beams, max_decoding_length=max_new_tokens,
                                                 max_batch_size=batch)
            out[name] = [tok.convert_tokens_to_string(r.hypotheses[0]) for r in results]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--systems", default="hf,ct2")
    args = p.parse_args()
    torch.set_num_threads(2)
    with open(args.input, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    systems = {"hf": hf, "ct2": ct2}
    results = {s: systems[s](args.model, lines, args.beam, args.max_new_tokens) for s in args.systems.split(",")}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
