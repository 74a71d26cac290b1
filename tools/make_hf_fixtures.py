#!/usr/bin/env python3
"""Tiny seeded Hugging Face Marian models and their reference outputs, for transduce's parity tests.

Run from the repository root (about a minute on 2 cores):

    python3 -m venv .venv-hf && .venv-hf/bin/pip install -r tools/requirements-hf.txt
    .venv-hf/bin/python tools/make_hf_fixtures.py

Writes tests/fixtures/hf_marian/:
  corpus.txt                 the text the SentencePiece models were trained on (written here, seeded)
  spm-nmt-nfkc.model         unigram, Marian-style ids (</s>=0, <unk>=1), nmt_nfkc normalisation
  spm-bytes.model            unigram with byte fallback, nfkc_cf, whitespace kept as is
  tiny/                      a MarianMTModel directory (config.json, model.safetensors, source.spm,
                             target.spm, vocab.json, tokenizer_config.json, generation_config.json)
  tiny-zero-pad/             the same with a zero <pad> embedding, as CTranslate2 runs Marian models
  reference.json             SentencePiece pieces/ids/decoding of tricky strings for both models,
                             MarianTokenizer ids and decoding, logits of a padded batch, greedy and
                             beam-4 generate() outputs; CTranslate2 greedy and beam-4 outputs of
                             tiny-zero-pad (converted with ct2-transformers-converter)
  reference-fren.json        the same checks on ../shared/models/marian-fren-s when it is present
"""

import json
import random
import shutil
import sys
from pathlib import Path

import sentencepiece as spm
import torch
from transformers import MarianConfig, MarianMTModel, MarianTokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "hf_marian"
SHARED_MODEL = ROOT.parent / "shared" / "models" / "marian-fren-s"

TRICKY = [
    "Je t'aime.",
    "L’homme à l'école mange une crème brûlée.",
    "  leading, trailing   and   multiple   spaces  ",
    "tabs\tand\u00a0no-break\u2009thin spaces",
    "Numbers: 3.14, 1,000,000 and 42% of 7/8.",
    "Émoji 😀 and ☃ snow, ❤️ heart.",
    "ﬁ ligature, ① circled, ＡＢＣ fullwidth, ½ half.",
    "Unknown scripts: 漢字, ж, ß, ğ.",
    "e\u0301 combining accent vs é precomposed",
    ">>fra<< Bonjour le monde",
    "zero\u200bwidth and soft\u00adhyphen",
    "MiXeD CaSe WORDS and words",
    "....!!!??? «quotes» “curly” — dash",
    "a literal </s> and <unk> in text",
    "",
    " ",
    "x",
]

SOURCES = [
    "Un homme regarde le chat noir.",
    "Deux enfants jouent dans le parc avec un chien.",
    "La femme à la robe rouge chante.",
    "Il fait beau aujourd'hui !",
    "Les 3 garçons mangent 12 pommes.",
    "Où est la gare ?",
]


def corpus(n=600, seed=7):
    rng = random.Random(seed)
    subjects = ["un homme", "une femme", "le chat", "la fille", "deux enfants", "les garçons", "mon père", "l'élève"]
    verbs = ["regarde", "mange", "chante", "joue avec", "cherche", "aime", "attend", "porte", "dessine"]
    objects = ["le chien", "une pomme", "la robe rouge", "un ballon", "l'école", "le parc", "une crème brûlée", "la gare"]
    extras = ["aujourd'hui", "dans le parc", "avec 3 amis", "à 12 h 30", "près de l'hôtel", "sous la pluie", ""]
    english = ["a man looks at the dog", "two children play", "the girl sings", "where is the station",
               "it is 3.14 o'clock", "she likes apples"]
    lines = []
    for i in range(n):
        if i % 4 == 3:
            line = rng.choice(english).capitalize() + rng.choice([".", "!", "?", " ..."])
        else:
            parts = [rng.choice(subjects), rng.choice(verbs), rng.choice(objects), rng.choice(extras)]
            line = " ".join(p for p in parts if p).capitalize() + rng.choice([".", " !", " ?", ", non ?"])
        if i % 17 == 0:
            line = "« " + line + " » — " + str(rng.randint(0, 99999))
        lines.append(line)
    return lines


def train_spm(path, lines, **kwargs):
    model = path.with_suffix("")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=str(model), model_type="unigram",
        character_coverage=1.0, hard_vocab_limit=False, num_threads=1, minloglevel=2, **kwargs)
    shutil.move(str(model) + ".model", path)
    Path(str(model) + ".vocab").unlink()
    return spm.SentencePieceProcessor(model_file=str(path))


def spm_reference(sp):
    out = []
    for s in TRICKY:
        pieces = sp.encode(s, out_type=str)
        out.append({"text": s, "normalized": sp.normalize(s), "pieces": pieces, "ids": sp.encode(s),
                    "decoded": sp.decode_pieces(pieces)})
    return out


def marian_reference(tok, model, sources, max_new_tokens):
    ref = {"tokenizer": [], "batch": {}, "greedy": [], "beam4": []}
    for s in TRICKY:
        ids = tok(s)["input_ids"]
        ref["tokenizer"].append({"text": s, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=True)})
    batch = tok(sources[:3], return_tensors="pt", padding=True)
    gen = torch.Generator().manual_seed(3)
    dec_in = torch.randint(0, model.config.vocab_size - 1, (3, 5), generator=gen)
    dec_in[:, 0] = model.config.decoder_start_token_id
    with torch.no_grad():
        logits = model(**batch, decoder_input_ids=dec_in).logits
    # large vocabularies: every 37th value is enough to catch a mapping error
    stride = 1 if logits.numel() <= 20000 else 37
    ref["batch"] = {"input_ids": batch["input_ids"].tolist(), "attention_mask": batch["attention_mask"].tolist(),
                    "decoder_input_ids": dec_in.tolist(), "logits_shape": list(logits.shape),
                    "logits_stride": stride, "logits": [round(x, 6) for x in logits.flatten()[::stride].tolist()]}
    pad = model.config.pad_token_id
    strip = lambda seq: [t for t in seq[1:] if t != pad]  # drop the start token and padding
    for name, beams in [("greedy", 1), ("beam4", 4)]:
        inputs = tok(sources, return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model.generate(**inputs, num_beams=beams, do_sample=False, max_new_tokens=max_new_tokens)
        for src, seq in zip(sources, out.tolist()):
            ids = strip(seq)
            ref[name].append({"source": src, "ids": ids, "text": tok.decode(ids, skip_special_tokens=True)})
    ref["max_new_tokens"] = max_new_tokens
    return ref


def tiny_model(sp_path, out_dir):
    sp = spm.SentencePieceProcessor(model_file=str(sp_path))
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    pad = len(vocab)
    vocab["<pad>"] = pad
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ["source.spm", "target.spm"]:
        shutil.copy(sp_path, out_dir / name)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=1))
    tok = MarianTokenizer(str(out_dir / "source.spm"), str(out_dir / "target.spm"), str(out_dir / "vocab.json"),
                          source_lang="fr", target_lang="en")
    tok.save_pretrained(out_dir)
    config = MarianConfig(
        vocab_size=pad + 1, decoder_vocab_size=pad + 1, d_model=16, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_position_embeddings=64, activation_function="swish", scale_embedding=True, dropout=0.0,
        attention_dropout=0.0, activation_dropout=0.0, pad_token_id=pad, eos_token_id=0, decoder_start_token_id=pad,
        forced_eos_token_id=0, share_encoder_decoder_embeddings=True, tie_word_embeddings=True, init_std=0.3)
    torch.manual_seed(0)
    model = MarianMTModel(config).eval()
    with torch.no_grad():
        # non-trivial values everywhere a mapping mistake could hide
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.add_(0.1 * torch.randn_like(p))
        model.final_logits_bias.normal_(0.0, 0.5)
        model.model.shared.weight[pad].normal_(0.0, 0.3)
    train_copy(model, tok, corpus(seed=11)[:400], steps=300)
    model.generation_config.bad_words_ids = [[pad]]
    model.generation_config.forced_eos_token_id = 0
    model.generation_config.max_length = 64
    model.save_pretrained(out_dir)
    return tok, model


def train_copy(model, tok, lines, steps, batch=32, before_step=None):
    """A few hundred Adam steps on copying sentences: outputs that depend on the input, end with
    </s> at different lengths and give beam search real choices. `before_step(step)` may set up
    the tokenizer for each step (a multilingual model's languages)."""
    torch.manual_seed(1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        if before_step:
            before_step(step)
        chunk = [lines[(step * batch + i) % len(lines)] for i in range(batch)]
        enc = tok(chunk, text_target=chunk, return_tensors="pt", padding=True)
        enc["labels"][enc["labels"] == model.config.pad_token_id] = -100
        loss = model(**enc).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    print(f"copy-task loss after {steps} steps: {loss.item():.3f}")


def ctranslate2_reference(model, tok, out_dir, sources, max_decoding_length):
    """The model with its <pad> row zeroed, saved to out_dir, converted for CTranslate2 and run
    greedy and with beam 4 (CTranslate2's own beam rule, default length penalty 1)."""
    import tempfile
    import ctranslate2

    with torch.no_grad():
        model.model.shared.weight[model.config.pad_token_id].zero_()
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    ref = {"max_decoding_length": max_decoding_length}
    with tempfile.TemporaryDirectory() as converted:
        ctranslate2.converters.TransformersConverter(str(out_dir)).convert(converted, force=True)
        translator = ctranslate2.Translator(converted, device="cpu", intra_threads=1)
        tokens = [tok.convert_ids_to_tokens(tok(s)["input_ids"]) for s in sources]
        for name, beam in [("greedy", 1), ("beam4", 4)]:
            results = translator.translate_batch(tokens, beam_size=beam, max_decoding_length=max_decoding_length)
            ref[name] = [{"source": s, "ids": tok.convert_tokens_to_ids(r.hypotheses[0])}
                         for s, r in zip(sources, results)]
    return ref


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    lines = corpus()
    (OUT / "corpus.txt").write_text("\n".join(lines) + "\n")
    nfkc = train_spm(OUT / "spm-nmt-nfkc.model", lines, vocab_size=160, unk_id=1, eos_id=0, bos_id=-1, pad_id=-1)
    byte = train_spm(OUT / "spm-bytes.model", lines, vocab_size=400, byte_fallback=True,
                     normalization_rule_name="nfkc_cf", remove_extra_whitespaces=False)
    tok, model = tiny_model(OUT / "spm-nmt-nfkc.model", OUT / "tiny")
    reference = {
        "spm": {"spm-nmt-nfkc.model": spm_reference(nfkc), "spm-bytes.model": spm_reference(byte)},
        "tiny": marian_reference(tok, model, SOURCES, max_new_tokens=30),
    }
    reference["tiny_zero_pad_ctranslate2"] = ctranslate2_reference(model, tok, OUT / "tiny-zero-pad", SOURCES, 30)
    (OUT / "reference.json").write_text(json.dumps(reference, ensure_ascii=False, indent=1))
    if SHARED_MODEL.exists():
        tok = MarianTokenizer.from_pretrained(SHARED_MODEL)
        model = MarianMTModel.from_pretrained(SHARED_MODEL).eval()
        sp = spm.SentencePieceProcessor(model_file=str(SHARED_MODEL / "source.spm"))
        ref = {"spm": spm_reference(sp), "model": marian_reference(tok, model, SOURCES, max_new_tokens=40)}
        (OUT / "reference-fren.json").write_text(json.dumps(ref, ensure_ascii=False, indent=1))
    else:
        print(f"{SHARED_MODEL} not found: reference-fren.json not written", file=sys.stderr)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
