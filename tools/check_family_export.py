#!/usr/bin/env python3
"""Does transformers translate a `transduce export hf-m2m100 | hf-t5` directory as transduce does?

    .venv-hf/bin/python tools/check_family_export.py EXPORTED_DIR --source-lang fra_Latn --target-lang eng_Latn \
        SENTENCE...

Runs `transduce translate --greedy` (target/release/transduce, or $TRANSDUCE_BIN) and the directory's
AutoModelForSeq2SeqLM.generate() (greedy, the target language forced first for M2M-100 / NLLB-200, MADLAD's
"<2xx> " before the source, </s> forced at the cap) on the sentences and prints each pair; exits 1 on any
difference. Needs torch, so it is a tool, not a CI test (CI's export tests load the export back into transduce).
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("sentences", nargs="+")
    p.add_argument("--source-lang")
    p.add_argument("--target-lang")
    p.add_argument("--max-new-tokens", type=int, default=40)
    a = p.parse_args()
    binary = os.environ.get("TRANSDUCE_BIN", str(ROOT / "target" / "release" / "transduce"))
    model_type = json.loads((Path(a.model) / "config.json").read_text())["model_type"]
    # transduce counts neither </s> nor M2M-100's forced language token; no length ratio
    counted = 2 if model_type == "m2m_100" else 1
    flags = ["--search", "greedy", "--max-len", str(a.max_new_tokens - counted), "--max-len-ratio", "0"]
    for flag, value in [("--source-lang", a.source_lang), ("--target-lang", a.target_lang)]:
        if value:
            flags += [flag, value]
    ours = subprocess.run([binary, "translate", "-m", a.model, *flags], input="\n".join(a.sentences) + "\n",
                          capture_output=True, text=True, check=True).stdout.splitlines()
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForSeq2SeqLM.from_pretrained(a.model).eval()
    kwargs, texts = {}, list(a.sentences)
    if model_type == "m2m_100":
        tok.src_lang = a.source_lang
        kwargs["forced_bos_token_id"] = tok.convert_tokens_to_ids(a.target_lang)
    elif a.target_lang:
        texts = [f"<2{a.target_lang}> {s}" for s in texts]
    different = 0
    for text, mine in zip(texts, ours):
        inputs = tok([text], return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, num_beams=1, do_sample=False, max_new_tokens=a.max_new_tokens,
                                 forced_eos_token_id=model.config.eos_token_id, **kwargs)
        theirs = tok.decode(out[0], skip_special_tokens=True)
        same = theirs == mine
        different += not same
        print(f"{'same' if same else 'DIFFERENT'}\n  transduce:    {mine}\n  transformers: {theirs}")
    print(f"{len(ours) - different} of {len(ours)} identical")
    sys.exit(1 if different else 0)


if __name__ == "__main__":
    main()
