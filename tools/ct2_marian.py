#!/usr/bin/env python3
"""Translate with CTranslate2 from a Hugging Face Marian directory, without PyTorch or transformers.

    .venv-ct2/bin/python tools/ct2_marian.py --model DIR --input src.txt --out results.json \
        [--beam 4] [--max-new-tokens 64]
    .venv-ct2/bin/python tools/ct2_marian.py --model DIR --save CT2_DIR   # convert only (fp32)

CTranslate2's own converter (`ct2-transformers-converter`) loads the model through transformers
and PyTorch, whose wheel pulls several GB of CUDA libraries. This script builds the same
`TransformerSpec` the converter's `MarianMTLoader` builds, from the safetensors file read with
numpy: post-norm layers, fused QKV self-attention, Marian's `[sin | cos]` sinusoid table, the
tied embedding as output projection with `final_logits_bias`, decoding from a zero embedding,
and the `<pad>` row removed when it is the last id. Tokens come from the directory's
SentencePiece models and `vocab.json` as MarianTokenizer makes them (pieces, then `</s>`).

Writes {"ct2": {"greedy": [...], "beam": [...]}}, one detokenized line per input line; the
transduce test `hf_export` compares it with its own CTranslate2 beam rule. Requirements:
tools/requirements-ct2.txt (ctranslate2, sentencepiece, safetensors, numpy).
"""

import argparse
import json
import math
import os
import tempfile

import numpy as np
import ctranslate2
import sentencepiece
from ctranslate2.converters import utils
from ctranslate2.specs import common_spec, transformer_spec
from safetensors.numpy import load_file

ACTIVATIONS = {
    "swish": common_spec.Activation.SWISH,
    "silu": common_spec.Activation.SWISH,
    "relu": common_spec.Activation.RELU,
    "gelu": common_spec.Activation.GELU,
}


def sinusoids(n_pos, dim):
    """MarianSinusoidalPositionalEmbedding's table: sines in the first half, cosines in the second."""
    position_enc = np.array([[pos / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for pos in range(n_pos)])
    out = np.zeros((n_pos, dim), dtype=np.float32)
    sentinel = dim // 2 if dim % 2 == 0 else dim // 2 + 1
    out[:, 0:sentinel] = np.sin(position_enc[:, 0::2])
    out[:, sentinel:] = np.cos(position_enc[:, 1::2])
    return out


def linear(spec, w, prefix):
    spec.weight = w[prefix + ".weight"]
    if prefix + ".bias" in w:
        spec.bias = w[prefix + ".bias"]


def layer_norm(spec, w, prefix):
    spec.gamma = w[prefix + ".weight"]
    spec.beta = w[prefix + ".bias"]


def attention(spec, w, prefix, self_attention):
    split = [common_spec.LinearSpec() for _ in range(3)]
    for part, name in zip(split, ["q_proj", "k_proj", "v_proj"]):
        linear(part, w, f"{prefix}.{name}")
    if self_attention:
        utils.fuse_linear(spec.linear[0], split)
    else:
        utils.fuse_linear(spec.linear[0], split[:1])
        utils.fuse_linear(spec.linear[1], split[1:])
    linear(spec.linear[-1], w, f"{prefix}.out_proj")


def transformer_layers(spec, w):
    """The encoder's and decoder's layers, named as Hugging Face's Marian and M2M-100 name them."""
    for i, layer in enumerate(spec.encoder.layer):
        p = f"model.encoder.layers.{i}"
        attention(layer.self_attention, w, p + ".self_attn", True)
        layer_norm(layer.self_attention.layer_norm, w, p + ".self_attn_layer_norm")
        linear(layer.ffn.linear_0, w, p + ".fc1")
        linear(layer.ffn.linear_1, w, p + ".fc2")
        layer_norm(layer.ffn.layer_norm, w, p + ".final_layer_norm")
    for i, layer in enumerate(spec.decoder.layer):
        p = f"model.decoder.layers.{i}"
        attention(layer.self_attention, w, p + ".self_attn", True)
        layer_norm(layer.self_attention.layer_norm, w, p + ".self_attn_layer_norm")
        attention(layer.attention, w, p + ".encoder_attn", False)
        layer_norm(layer.attention.layer_norm, w, p + ".encoder_attn_layer_norm")
        linear(layer.ffn.linear_0, w, p + ".fc1")
        linear(layer.ffn.linear_1, w, p + ".fc2")
        layer_norm(layer.ffn.layer_norm, w, p + ".final_layer_norm")


def common(spec, w, config, side, table):
    spec.scale_embeddings = math.sqrt(config["d_model"]) if config.get("scale_embedding", False) else 1.0
    spec.position_encodings.encodings = sinusoids(config["max_position_embeddings"], config["d_model"])
    embeddings = spec.embeddings[0] if isinstance(spec.embeddings, list) else spec.embeddings
    embeddings.weight = w.get(f"model.{side}.embed_tokens.weight", table)


def marian_spec(model_dir):
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    w = load_file(os.path.join(model_dir, "model.safetensors"))
    spec = transformer_spec.TransformerSpec.from_config(
        (config["encoder_layers"], config["decoder_layers"]),
        config["encoder_attention_heads"],
        pre_norm=False,
        activation=ACTIVATIONS[config["activation_function"]],
        layernorm_embedding=False,
    )
    table = w["model.shared.weight"]
    common(spec.encoder, w, config, "encoder", table)
    spec.decoder.start_from_zero_embedding = True
    common(spec.decoder, w, config, "decoder", table)
    transformer_layers(spec, w)
    spec.decoder.projection.weight = w.get("lm_head.weight", table)
    bias = w.get("final_logits_bias")
    if bias is not None and np.count_nonzero(bias):
        spec.decoder.projection.bias = bias.reshape(-1)

    with open(os.path.join(model_dir, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])][: config["vocab_size"]]
    # as MarianMTLoader: <pad> (the last id) only starts the decoder, which starts from zeros
    if tokens[-1] == "<pad>":
        tokens.pop()
        for s in [spec.encoder.embeddings[0], spec.decoder.embeddings, spec.decoder.projection]:
            if s.weight.shape[0] == len(tokens) + 1:
                s.weight = s.weight[:-1]
            if isinstance(s, common_spec.LinearSpec) and s.has_bias() and s.bias.shape[0] == len(tokens) + 1:
                s.bias = s.bias[:-1]
    spec.config.eos_token = "</s>"
    spec.config.unk_token = "<unk>"
    spec.config.decoder_start_token = "</s>"
    spec.register_source_vocabulary(tokens)
    spec.register_target_vocabulary(tokens)
    return spec, set(vocab)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--input")
    p.add_argument("--out")
    p.add_argument("--save", help="only write the converted CTranslate2 model (fp32) to this directory")
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=64)
    args = p.parse_args()
    if args.save:
        spec, _ = marian_spec(args.model)
        spec.validate()
        spec.optimize(quantization=None)
        os.makedirs(args.save, exist_ok=True)
        spec.save(args.save)
        return
    if not (args.input and args.out):
        p.error("--input and --out are required unless --save is given")
    with open(args.input, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    spec, known = marian_spec(args.model)
    source = sentencepiece.SentencePieceProcessor(model_file=os.path.join(args.model, "source.spm"))
    target = sentencepiece.SentencePieceProcessor(model_file=os.path.join(args.model, "target.spm"))
    sources = [[t if t in known else "<unk>" for t in source.encode(line, out_type=str)] + ["</s>"] for line in lines]
    out = {}
    with tempfile.TemporaryDirectory() as converted:
        spec.validate()
        spec.optimize(quantization=None)
        spec.save(converted)
        translator = ctranslate2.Translator(converted, device="cpu", inter_threads=1, intra_threads=2)
        for name, beams in [("greedy", 1), ("beam", args.beam)]:
            results = translator.translate_batch(sources, beam_size=beams, max_decoding_length=args.max_new_tokens,
                                                 max_batch_size=32)
            out[name] = [target.decode_pieces(r.hypotheses[0]) for r in results]
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"ct2": out}, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
