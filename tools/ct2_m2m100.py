#!/usr/bin/env python3
"""Convert a Hugging Face M2M-100 / NLLB-200 directory for CTranslate2, without PyTorch or transformers.

    .venv-ct2/bin/python tools/ct2_m2m100.py --model DIR --save CT2_DIR [--quantization int8]

Builds the `TransformerSpec` that CTranslate2's `M2M100Loader` (a `BartLoader` with
`normalize_before`) builds, from `model.safetensors` read with numpy: pre-norm layers with the
encoder's and decoder's final layer norms, no layer norm on the embeddings, embeddings scaled by
√d, fairseq's sinusoid table from position `padding_idx + 1` on, the shared table as the output
projection, decoding from `decoder_start_token_id`. The vocabulary is the directory's
`tokenizer.json` (id order); ids past it, as in a checkpoint whose table is larger than its
tokenizer, get made-up names `<extra_ID>` so that the table keeps its size.
Requirements: tools/requirements-ct2.txt (ctranslate2, safetensors, numpy, tokenizers).
"""

import argparse
import json
import math
import os
import sys

import numpy as np
from ctranslate2.specs import transformer_spec
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ct2_marian import ACTIVATIONS, layer_norm, transformer_layers  # noqa: E402


def fairseq_sinusoids(n_pos, dim, padding_idx):
    """M2M100SinusoidalPositionalEmbedding's table from its first real position on: `[sin | cos]`,
    frequencies 10000^(-i / (dim/2 - 1)), rows for absolute positions padding_idx + 1, ..."""
    half = dim // 2
    freq = np.exp(np.arange(half, dtype=np.float32) * -(math.log(10000.0) / (half - 1)))
    pos = np.arange(padding_idx + 1, padding_idx + 1 + n_pos, dtype=np.float32)[:, None] * freq[None, :]
    table = np.concatenate([np.sin(pos), np.cos(pos)], axis=1)
    if dim % 2 == 1:
        table = np.concatenate([table, np.zeros((n_pos, 1), dtype=np.float32)], axis=1)
    return table.astype(np.float32)


def side(spec, w, config, name, table):
    spec.scale_embeddings = math.sqrt(config["d_model"]) if config.get("scale_embedding", False) else 1.0
    spec.position_encodings.encodings = fairseq_sinusoids(
        config["max_position_embeddings"], config["d_model"], config["pad_token_id"])
    embeddings = spec.embeddings[0] if isinstance(spec.embeddings, list) else spec.embeddings
    embeddings.weight = w.get(f"model.{name}.embed_tokens.weight", table)
    layer_norm(spec.layer_norm, w, f"model.{name}.layer_norm")


def m2m100_spec(model_dir):
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    if config.get("model_type") != "m2m_100":
        raise SystemExit(f"{model_dir}/config.json: model_type {config.get('model_type')!r}, expected 'm2m_100'")
    w = load_file(os.path.join(model_dir, "model.safetensors"))
    spec = transformer_spec.TransformerSpec.from_config(
        (config["encoder_layers"], config["decoder_layers"]),
        config["encoder_attention_heads"],
        pre_norm=True,
        activation=ACTIVATIONS[config["activation_function"]],
        layernorm_embedding=False,
    )
    table = w["model.shared.weight"]
    side(spec.encoder, w, config, "encoder", table)
    side(spec.decoder, w, config, "decoder", table)
    transformer_layers(spec, w)
    spec.decoder.projection.weight = w.get("lm_head.weight", table)

    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    rows = table.shape[0]
    tokens = [tokenizer.id_to_token(i) or f"<extra_{i}>" for i in range(rows)]
    spec.config.bos_token = "<s>"
    spec.config.eos_token = "</s>"
    spec.config.unk_token = "<unk>"
    spec.config.decoder_start_token = tokens[config["decoder_start_token_id"]]
    spec.register_source_vocabulary(tokens)
    spec.register_target_vocabulary(tokens)
    return spec


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--save", required=True, help="the CTranslate2 model directory to write")
    p.add_argument("--quantization", choices=["int8"], help="CTranslate2's weight quantization (default f32)")
    args = p.parse_args()
    spec = m2m100_spec(args.model)
    spec.validate()
    spec.optimize(quantization=args.quantization)
    os.makedirs(args.save, exist_ok=True)
    spec.save(args.save)
    print(f"wrote {args.save}")


if __name__ == "__main__":
    main()
