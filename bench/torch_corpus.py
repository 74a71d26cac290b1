#!/usr/bin/env python3
"""PyTorch's training step (../shared/bench/torch_ref.py's model and optimiser) on the corpus
batches that `transduce bench train-corpus --write-batches FILE` wrote: the same sentences in the
same batches, padded the same way, timed the same way (3 warm-up steps, then every batch).

    .venv-bench/bin/python bench/torch_corpus.py FILE [torch_ref.py model flags, e.g. --d-model 512]

Prints one JSON line, figure `train_corpus`, with the fields transduce prints. The loss ignores
padding (`ignore_index`); torch_ref's attention has no padding mask, so PyTorch attends over the
padded keys (the same tensor shapes, a little less work than masking).
"""
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TORCH_REF = ROOT.parent / "shared" / "bench" / "torch_ref.py"
PAD, BOS, EOS = 0, 1, 2
WARMUP = 3


def load_batches(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def torch_ref(flags):
    """Imports torch_ref.py with these command-line flags (it reads its model size from them)."""
    sys.argv = [str(TORCH_REF)] + flags
    spec = importlib.util.spec_from_file_location("torch_ref", TORCH_REF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    path, flags = sys.argv[1], sys.argv[2:]
    batches = load_batches(path)
    longest = max(max(len(s) for s in b["src"]) + 1 for b in batches)
    longest = max(longest, max(max(len(t) for t in b["tgt"]) + 1 for b in batches))
    vocab = 1 + max(max(max(ids) for ids in b["src"] + b["tgt"]) for b in batches)
    if "--vocab" not in flags:
        flags = flags + ["--vocab", str(max(vocab, 8000))]
    ref = torch_ref(flags + ["--src-len", str(longest), "--tgt-len", str(longest)])
    torch, F = ref.torch, ref.F

    def pad(rows):
        width = max(len(r) for r in rows)
        return torch.tensor([r + [PAD] * (width - len(r)) for r in rows], dtype=torch.long)

    tensors = []
    for b in batches:
        src = pad([s + [EOS] for s in b["src"]])
        tgt_in = pad([[BOS] + t for t in b["tgt"]])
        tgt_out = pad([t + [EOS] for t in b["tgt"]])
        tensors.append((src, tgt_in, tgt_out, sum(len(t) + 1 for t in b["tgt"]), len(b["tgt"])))

    m = ref.Model()
    m.train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    times, tokens, padded, rows = [], 0, 0, 0
    for i, (src, tgt_in, tgt_out, ntokens, nrows) in enumerate(tensors):
        t0 = time.perf_counter()
        logits = m(src, tgt_in)
        loss = F.cross_entropy(logits.reshape(-1, ref.V), tgt_out.reshape(-1), ignore_index=PAD)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
        dt = time.perf_counter() - t0
        if i >= WARMUP:
            times.append(dt)
            tokens += ntokens
            padded += tgt_out.numel()
            rows += nrows
    steps = len(times)
    print(json.dumps({
        "system": f"torch-{torch.__version__}", "threads": torch.get_num_threads(), "figure": "train_corpus",
        "params": sum(p.numel() for p in m.parameters()), "steps": steps, "rows": round(rows / steps, 1),
        "tgt_tokens": tokens, "padded_tgt_tokens": padded,
        "median_step_ms": round(statistics.median(times) * 1e3, 2),
        "tgt_tokens_per_s": round(tokens / sum(times), 1),
    }), flush=True)


if __name__ == "__main__":
    main()
