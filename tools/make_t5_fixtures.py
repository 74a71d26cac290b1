#!/usr/bin/env python3
"""Tiny seeded T5 and MADLAD-400-style mT5 models and their reference outputs, for transduce's parity tests.

Run from the repository root (a minute on 2 cores), in the venv of tools/requirements-hf.txt:

    .venv-hf/bin/python tools/make_t5_fixtures.py

Writes tests/fixtures/hf_t5/:
  t5/              a T5ForConditionalGeneration directory as t5-small ships it (ReLU feed-forward, output tied to
                   the embeddings and fed d_model^-0.5 h), with d_kv != d_model / heads, a SentencePiece unigram
                   spiece.model trained here (pad 0, </s> 1, <unk> 2, no <s>) and the 100 <extra_id_N> tokens,
                   tokenizer.json as the pinned transformers writes it
  madlad/          an MT5ForConditionalGeneration directory as MADLAD-400 ships it (gated GELU, untied output
                   projection lm_head.weight, tie_word_embeddings false), whose vocabulary has the target-language
                   pieces <2en>, <2de>, <2fr> (user-defined symbols)
  reference.json   per model: tokenizer ids (</s> last) and decoding of tricky strings (extra ids and language
                   tokens in text included), logits of a padded batch, greedy and beam-4 generate() outputs
                   (MADLAD: "<2xx> " before the source)

The real T5Tokenizer of the pinned transformers produces every reference; the script checks that its pieces are
SentencePiece's own before writing anything (in transformers 5, T5Tokenizer(vocab_file=...) silently ignores the
file and maps every word to <unk>; from_pretrained() on the directory converts it).
Few buckets (8) and a short max_distance (20) make the relative position buckets' logarithmic range matter on
sentences of 20-40 tokens.
"""

import json
import shutil
import sys
from pathlib import Path

import sentencepiece as spm
import torch
from transformers import MT5Config, MT5ForConditionalGeneration, T5Config, T5ForConditionalGeneration, T5Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_hf_fixtures  # noqa: E402
from make_hf_fixtures import SOURCES, TRICKY, corpus  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "hf_t5"

LANGUAGES = ["en", "de", "fr"]
T5_TRICKY = TRICKY + [
    "<extra_id_0> Bonjour <extra_id_99>",
    "<2de> Bonjour <2en>",
    "a </s> and <pad> inside",
    "Ελληνικά και русский текст",
]


def train_unigram(path, lines, user_symbols):
    model = path.with_suffix("")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=str(model), model_type="unigram", vocab_size=300,
        character_coverage=1.0, hard_vocab_limit=False, num_threads=1, minloglevel=2,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, user_defined_symbols=user_symbols)
    shutil.move(str(model) + ".model", path)
    Path(str(model) + ".vocab").unlink()
    return spm.SentencePieceProcessor(model_file=str(path))


def tokenizer(sp_path, out_dir, extra_ids):
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(sp_path, out_dir / "spiece.model")
    # T5Tokenizer(vocab_file=...) ignores the file in transformers 5 (every word comes out <unk>);
    # from_pretrained converts the .model
    tok = T5Tokenizer.from_pretrained(str(out_dir), extra_ids=extra_ids)
    tok.save_pretrained(out_dir)
    reloaded = T5Tokenizer.from_pretrained(str(out_dir))
    sp = spm.SentencePieceProcessor(model_file=str(sp_path))
    for s in TRICKY:
        if "</s>" in s:
            continue  # T5Tokenizer reads a literal </s> as the token
        ids = reloaded(s)["input_ids"]
        assert ids == sp.encode(s) + [1], (s, ids, sp.encode(s))
    if extra_ids:
        assert reloaded.convert_tokens_to_ids("<extra_id_0>") == len(reloaded) - 1
    return reloaded


def t5_model(vocab_size):
    """T5 v1.0: ReLU, the output tied and fed d^-0.5 h."""
    return tiny_model(T5Config, T5ForConditionalGeneration, vocab_size, d_kv=6, d_ff=64, feed_forward_proj="relu")


def madlad_model(vocab_size):
    """MADLAD-400 (an mT5): gated GELU (untied by untied())."""
    return tiny_model(MT5Config, MT5ForConditionalGeneration, vocab_size, d_kv=8, d_ff=48,
                      feed_forward_proj="gated-gelu")


def tiny_model(config_class, model_class, vocab_size, **shape):
    config = config_class(
        vocab_size=vocab_size, d_model=32, num_layers=2, num_decoder_layers=2, num_heads=4,
        relative_attention_num_buckets=8, relative_attention_max_distance=20, dropout_rate=0.0,
        initializer_factor=1.0, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, **shape)
    torch.manual_seed(0)
    return perturbed(model_class(config).eval())


def untied(model):
    """The output projection as its own matrix (MADLAD-400, mT5 ship one): MT5Config of transformers 5 forces
    tie_word_embeddings (and its models tie lm_head to the embeddings), so the untying is done here, on a copy of
    the table with noise, and the directory is written with safetensors itself."""
    with torch.no_grad():
        own = model.shared.weight.detach().clone() + 0.5 * torch.randn_like(model.shared.weight)
    model.lm_head.weight = torch.nn.Parameter(own)
    assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()
    return model


def save_untied(model, directory):
    from safetensors.torch import save_file
    model.save_pretrained(directory)
    state = {k: v.contiguous() for k, v in model.state_dict().items()
             if k not in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")}
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((directory / "config.json").read_text())
    config["tie_word_embeddings"] = False
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def perturbed(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


class TargetPrefix:
    """The tokenizer with MADLAD's "<2xx> " before each source, the language taking turns per step."""

    def __init__(self, tok):
        self.tok, self.lang = tok, LANGUAGES[0]

    def __call__(self, texts, **kwargs):
        return self.tok([f"<2{self.lang}> {t}" for t in texts], **kwargs)


def train_copy(model, tok, languages):
    lines = corpus(seed=11)[:400]
    if not languages:
        make_hf_fixtures.train_copy(model, tok, lines, steps=300)
        return
    prefixed = TargetPrefix(tok)

    def set_language(step):
        prefixed.lang = LANGUAGES[step % len(LANGUAGES)]
    make_hf_fixtures.train_copy(model, prefixed, lines, steps=300, before_step=set_language)


def reference(tok, model, languages, max_new_tokens):
    ref = {"tokenizer": [], "max_new_tokens": max_new_tokens}
    for s in T5_TRICKY:
        ids = tok(s)["input_ids"]
        ref["tokenizer"].append({"text": s, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=True)})
    prefix = (lambda lang: f"<2{lang}> ") if languages else (lambda lang: "")
    batch = tok([prefix("de") + s for s in SOURCES[:3]], return_tensors="pt", padding=True)
    gen = torch.Generator().manual_seed(3)
    dec_in = torch.randint(3, model.config.vocab_size, (3, 5), generator=gen)
    dec_in[:, 0] = model.config.decoder_start_token_id
    with torch.no_grad():
        logits = model(**batch, decoder_input_ids=dec_in).logits
    ref["batch"] = {"input_ids": batch["input_ids"].tolist(), "attention_mask": batch["attention_mask"].tolist(),
                    "decoder_input_ids": dec_in.tolist(), "logits_shape": list(logits.shape), "logits_stride": 1,
                    "logits": [round(x, 6) for x in logits.flatten().tolist()]}
    eos = model.config.eos_token_id
    for name, beams in [("greedy", 1), ("beam4", 4)]:
        ref[name] = []
        for lang in languages or [None]:
            inputs = tok([prefix(lang) + s for s in SOURCES], return_tensors="pt", padding=True)
            with torch.no_grad():
                out = model.generate(**inputs, num_beams=beams, do_sample=False, max_new_tokens=max_new_tokens,
                                     forced_eos_token_id=model.config.eos_token_id)
            for src, seq in zip(SOURCES, out.tolist()):
                ids = seq[1:]  # start token dropped; </s> kept, what follows it (padding) dropped
                ids = ids[:ids.index(eos) + 1] if eos in ids else ids
                ref[name].append({"source": src, "target_lang": lang, "ids": ids,
                                  "text": tok.decode(ids, skip_special_tokens=True)})
    return ref


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    lines = corpus()
    out = {}
    for family, user_symbols, extra_ids, make_model in [
        ("t5", [], 100, t5_model),
        ("madlad", [f"<2{lang}>" for lang in LANGUAGES], 0, madlad_model),
    ]:
        directory = OUT / family
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        sp_path = OUT / f"{family}-spm.model"
        train_unigram(sp_path, lines, user_symbols)
        tok = tokenizer(sp_path, directory, extra_ids)
        sp_path.unlink()
        model = make_model(len(tok))
        languages = LANGUAGES if user_symbols else []
        if languages:
            model = untied(model)
        train_copy(model, tok, languages)
        if languages:
            save_untied(model, directory)
        else:
            model.save_pretrained(directory)
        tok.save_pretrained(directory)
        out[family] = reference(tok, model, languages, max_new_tokens=30)
    (OUT / "reference.json").write_text(json.dumps(out, ensure_ascii=False, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
