#!/usr/bin/env python3
"""Tiny seeded M2M-100 and NLLB-200 models and their reference outputs, for transduce's parity tests.

Run from the repository root (a minute or two on 2 cores), in the venv of tools/requirements-hf.txt:

    .venv-hf/bin/python tools/make_multilingual_fixtures.py

Writes tests/fixtures/hf_m2m100/:
  */sentencepiece.bpe.model  a SentencePiece BPE model trained here on make_hf_fixtures.corpus() (unk 0, <s> 1, </s> 2,
                     as NLLB's and M2M-100's sentencepiece.bpe.model), nmt_nfkc normalisation
  m2m100/            an M2M100ForConditionalGeneration directory as facebook/m2m100_418M ships it: config.json,
                     model.safetensors, sentencepiece.bpe.model, vocab.json (fairseq dictionary order: shuffled,
                     a few pieces left out so that they map to <unk>), tokenizer_config.json; the 100 `__xx__`
                     language codes and 8 made-up words after the vocabulary
  nllb/              the same model class as facebook/nllb-200-distilled-600M ships it: sentencepiece.bpe.model
                     and tokenizer.json (fairseq offset 1, the 202 `xxx_Xxxx` codes, then <mask>, two unused
                     rows after), tokenizer_config.json
  reference.json     SentencePiece BPE pieces/ids of tricky strings; per model: tokenizer ids (source language
                     code first, </s> last) and decoding, logits of a padded batch, greedy and beam-4
                     generate() outputs with the target language forced as the first token (and </s> at
                     the length cap)

The real tokenizer classes (M2M100Tokenizer, NllbTokenizer) of the pinned transformers produce every reference.
In transformers 5, NllbTokenizer.from_pretrained() on a bare sentencepiece.bpe.model lacks the language codes
(they map to <unk>): the NLLB tokenizer here is built from the SentencePiece merges with the codes placed as
the Hub's tokenizer.json places them, and the script checks the ids before writing anything.
"""

import base64
import json
import random
import shutil
import sys
from pathlib import Path

import sentencepiece as spm
import torch
from transformers import M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer, NllbTokenizer
from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES as M2M_CODES
from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES as NLLB_CODES

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_hf_fixtures  # noqa: E402
from make_hf_fixtures import SOURCES, TRICKY, corpus, spm_reference  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "hf_m2m100"

MULTILINGUAL_TRICKY = TRICKY + [
    "__fr__ Bonjour __en__",
    "fra_Latn Bonjour eng_Latn",
    "a <mask> and <s> inside",
    "Ελληνικά και русский текст",
]

# (source language, target language) of the generate() references, per family
PAIRS = {
    "m2m100": [("fr", "en"), ("en", "de"), ("fr", "fr")],
    "nllb": [("fra_Latn", "eng_Latn"), ("eng_Latn", "deu_Latn"), ("fra_Latn", "zho_Hans")],
}


def train_bpe(path, lines):
    model = path.with_suffix("")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=str(model), model_type="bpe", vocab_size=300,
        character_coverage=1.0, hard_vocab_limit=False, num_threads=1, minloglevel=2)
    shutil.move(str(model) + ".model", path)
    Path(str(model) + ".vocab").unlink()
    return spm.SentencePieceProcessor(model_file=str(path))


def m2m100_tokenizer(sp_path, out_dir):
    """vocab.json in a fairseq dictionary's order (not SentencePiece's), some pieces missing."""
    sp = spm.SentencePieceProcessor(model_file=str(sp_path))
    pieces = [sp.id_to_piece(i) for i in range(3, sp.get_piece_size())]
    rng = random.Random(5)
    rng.shuffle(pieces)
    dropped = set(pieces[:6])
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for p in pieces:
        if p not in dropped:
            vocab[p] = len(vocab)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(sp_path, out_dir / "sentencepiece.bpe.model")
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=1))
    tok = M2M100Tokenizer(str(out_dir / "vocab.json"), str(out_dir / "sentencepiece.bpe.model"),
                          src_lang="fr", tgt_lang="en")
    tok.save_pretrained(out_dir)
    assert tok.get_lang_id("af") == len(vocab) and tok.get_lang_id("zu") == len(vocab) + 99
    return tok, len(vocab) + len(M2M_CODES["m2m100"]) + 8


def nllb_tokenizer(sp_path, out_dir):
    """NllbTokenizer over the SentencePiece merges, laid out as the Hub's tokenizer.json: fairseq specials,
    pieces at their SentencePiece id + 1, the language codes, then <mask>."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(sp_path, out_dir / "sentencepiece.bpe.model")
    converted = NllbTokenizer.from_pretrained(str(out_dir))
    backend = json.loads(converted._tokenizer.to_str())
    vocab = dict(backend["model"]["vocab"])
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in backend["model"]["merges"]]
    sp = spm.SentencePieceProcessor(model_file=str(sp_path))
    for i in range(3, sp.get_piece_size()):
        assert vocab[sp.id_to_piece(i)] == i + 1, "converted pieces are not at their fairseq ids"
    base = sp.get_piece_size() + 1
    vocab = {k: v for k, v in vocab.items() if v < base}
    for i, code in enumerate(NLLB_CODES):
        vocab[code] = base + i
    vocab["<mask>"] = base + len(NLLB_CODES)
    charsmap = list(base64.b64decode(backend["normalizer"]["normalizers"][0]["precompiled_charsmap"]))
    tok = NllbTokenizer(vocab=vocab, merges=merges, _spm_precompiled_charsmap=charsmap,
                        additional_special_tokens=list(NLLB_CODES), src_lang="fra_Latn", tgt_lang="eng_Latn")
    assert tok.convert_tokens_to_ids("ace_Arab") == base, tok.convert_tokens_to_ids("ace_Arab")
    assert tok.convert_tokens_to_ids("zul_Latn") == base + len(NLLB_CODES) - 1
    assert tok.convert_tokens_to_ids("<mask>") == base + len(NLLB_CODES)
    assert tok("Bonjour")["input_ids"][0] == tok.convert_tokens_to_ids("fra_Latn")
    (out_dir / "tokenizer.json").unlink(missing_ok=True)
    tok.save_pretrained(out_dir)
    # what a user gets back from the directory
    reloaded = NllbTokenizer.from_pretrained(str(out_dir), src_lang="fra_Latn")
    for s in MULTILINGUAL_TRICKY:
        assert reloaded(s)["input_ids"] == tok(s)["input_ids"], s
    return reloaded, base + len(NLLB_CODES) + 1 + 2


def tiny_model(vocab_size, out_dir):
    config = M2M100Config(
        vocab_size=vocab_size, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
        activation_function="relu", scale_embedding=True, dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0, encoder_layerdrop=0.0, decoder_layerdrop=0.0, pad_token_id=1, bos_token_id=0,
        eos_token_id=2, decoder_start_token_id=2, init_std=0.3, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = M2M100ForConditionalGeneration(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


def train_copy(model, tok, lines, pairs, steps):
    """make_hf_fixtures' copy task with the family's language codes, the pairs taking turns."""
    def set_languages(step):
        tok.src_lang, tok.tgt_lang = pairs[step % len(pairs)]
    make_hf_fixtures.train_copy(model, tok, lines, steps, before_step=set_languages)


def lang_id(tok, code):
    return tok.get_lang_id(code) if isinstance(tok, M2M100Tokenizer) else tok.convert_tokens_to_ids(code)


def reference(tok, model, pairs, max_new_tokens):
    ref = {"tokenizer": [], "batch": {}, "greedy": [], "beam4": [], "max_new_tokens": max_new_tokens}
    src_lang = pairs[0][0]
    tok.src_lang = src_lang
    for s in MULTILINGUAL_TRICKY:
        ids = tok(s)["input_ids"]
        ref["tokenizer"].append({"text": s, "source_lang": src_lang, "ids": ids,
                                 "decoded": tok.decode(ids, skip_special_tokens=True)})
    batch = tok(SOURCES[:3], return_tensors="pt", padding=True)
    gen = torch.Generator().manual_seed(3)
    dec_in = torch.randint(4, model.config.vocab_size - 3, (3, 5), generator=gen)
    dec_in[:, 0] = model.config.decoder_start_token_id
    dec_in[:, 1] = lang_id(tok, pairs[0][1])
    with torch.no_grad():
        logits = model(**batch, decoder_input_ids=dec_in).logits
    ref["batch"] = {"input_ids": batch["input_ids"].tolist(), "attention_mask": batch["attention_mask"].tolist(),
                    "decoder_input_ids": dec_in.tolist(), "logits_shape": list(logits.shape), "logits_stride": 1,
                    "logits": [round(x, 6) for x in logits.flatten().tolist()]}
    pad = model.config.pad_token_id
    for name, beams in [("greedy", 1), ("beam4", 4)]:
        for src_lang, tgt_lang in pairs:
            tok.src_lang = src_lang
            inputs = tok(SOURCES, return_tensors="pt", padding=True)
            with torch.no_grad():
                # forced_eos_token_id: a sentence cut at the cap ends with </s>, as transduce's do
                out = model.generate(**inputs, num_beams=beams, do_sample=False, max_new_tokens=max_new_tokens,
                                     forced_bos_token_id=lang_id(tok, tgt_lang),
                                     forced_eos_token_id=model.config.eos_token_id)
            for src, seq in zip(SOURCES, out.tolist()):
                ids = [t for t in seq[1:] if t != pad]  # start token and padding dropped; code and </s> kept
                ref[name].append({"source": src, "source_lang": src_lang, "target_lang": tgt_lang, "ids": ids,
                                  "text": tok.decode(ids, skip_special_tokens=True)})
    return ref


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    lines = corpus()
    sp_path = OUT / "spm-bpe.model"
    sp = train_bpe(sp_path, lines)
    spm_cases = []
    for case in spm_reference(sp):
        spm_cases.append(case)
    for s in MULTILINGUAL_TRICKY[len(TRICKY):]:
        pieces = sp.encode(s, out_type=str)
        spm_cases.append({"text": s, "normalized": sp.normalize(s), "pieces": pieces, "ids": sp.encode(s),
                          "decoded": sp.decode_pieces(pieces)})
    out = {"spm": {"m2m100/sentencepiece.bpe.model": spm_cases}}
    for family, make_tokenizer in [("m2m100", m2m100_tokenizer), ("nllb", nllb_tokenizer)]:
        directory = OUT / family
        shutil.rmtree(directory, ignore_errors=True)
        tok, vocab_size = make_tokenizer(sp_path, directory)
        model = tiny_model(vocab_size, directory)
        train_copy(model, tok, corpus(seed=11)[:400], PAIRS[family], steps=300)
        model.save_pretrained(directory)
        tok.save_pretrained(directory)
        out[family] = reference(tok, model, PAIRS[family], max_new_tokens=30)
    sp_path.unlink()  # each model directory has its copy
    (OUT / "reference.json").write_text(json.dumps(out, ensure_ascii=False, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
