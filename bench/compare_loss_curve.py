#!/usr/bin/env python3
"""Same weights, same data, same optimiser: does transduce's training follow PyTorch's loss curve?

    .venv-bench/bin/python bench/compare_loss_curve.py [--preset small|base] [--steps 200] [--dropout 0]

`transduce bench loss-curve` writes its initial parameters and one random batch (no padding)
and trains on that batch; this script loads the same parameters into
shared/bench/torch_ref.py's model (pre-norm, ReLU, shared input embeddings, separate output
projection, interleaved sinusoids: the `bench_config` of transduce), trains it on the same batch
with torch.optim.AdamW (lr 1e-4, betas 0.9/0.999, eps 1e-8, weight decay 0.01) and plain
cross-entropy, and compares the losses step by step. With dropout 0 both runs are deterministic
and differ only by float rounding; with dropout the random masks differ, so the curves agree
only within noise: the report then adds PyTorch against itself with other masks, the noise.
"""
import argparse
import importlib.util
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TORCH_REF = ROOT.parent / "shared" / "bench" / "torch_ref.py"
TORCH_FLAGS = {"small": [], "base": ["--d-model", "512", "--heads", "8", "--ffn", "2048", "--layers", "6"]}


def torch_name(name):
    """transduce parameter name -> torch_ref.py parameter name."""
    fixed = {"shared.weight": "emb.weight", "lm_head.weight": "out.weight", "lm_head.bias": "out.bias"}
    if name in fixed:
        return fixed[name]
    parts = name.split(".")
    stack = {"encoder": "enc", "decoder": "dec"}[parts[0]]
    if parts[1] == "final_norm":
        return f"{stack}_ln.{parts[2]}"
    i, rest = parts[2], parts[3:]
    norms = {"encoder": {"self_attn_norm": "ln1", "ffn_norm": "ln2"},
             "decoder": {"self_attn_norm": "ln1", "cross_attn_norm": "ln2", "ffn_norm": "ln3"}}[parts[0]]
    blocks = {"encoder": {"self_attn": "att"}, "decoder": {"self_attn": "sa", "cross_attn": "ca"}}[parts[0]]
    projections = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "out_proj": "o", "fc1": "l1", "fc2": "l2"}
    if rest[0] in norms:
        return f"{stack}.{i}.{norms[rest[0]]}.{rest[1]}"
    if rest[0] == "ffn":
        return f"{stack}.{i}.ffn.{projections[rest[1]]}.{rest[2]}"
    return f"{stack}.{i}.{blocks[rest[0]]}.{projections[rest[1]]}.{rest[2]}"


def torch_losses(work, preset, dropout, steps, seed=0):
    sys.argv = ["torch_ref.py", "train", "--dropout", str(dropout)] + TORCH_FLAGS[preset]
    spec = importlib.util.spec_from_file_location("torch_ref", TORCH_REF)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)  # defines the model for these flags (runs no benchmark)
    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file

    model = ref.Model()
    init = load_file(str(work / "init.safetensors"))
    state = {torch_name(k): v for k, v in init.items()}
    missing = set(model.state_dict()) - set(state) - {"pe"}
    if missing:
        sys.exit(f"no transduce tensor for {sorted(missing)}")
    model.load_state_dict(state, strict=False)
    batch = load_file(str(work / "batch.safetensors"))
    src, tgt_in, tgt_out = batch["src"], batch["tgt_in"], batch["tgt_out"]
    if max(src.shape[1], tgt_in.shape[1]) > model.pe.shape[0]:
        # torch_ref sizes its position table for its own lengths; ours has one more target token
        model.pe = ref.sinusoid(max(src.shape[1], tgt_in.shape[1]))
    model.train()
    torch.manual_seed(seed)  # dropout masks
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    losses = []
    for _ in range(steps):
        logits = model(src, tgt_in)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "transduce"))
    ap.add_argument("--preset", choices=sorted(TORCH_FLAGS), default="small")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--work", type=Path, default=None, help="where the weights and batch go (default: a temp dir)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="loss-curve-"))
    out = subprocess.run([args.binary, "bench", "loss-curve", "--preset", args.preset, "--steps", str(args.steps),
                          "--dropout", str(args.dropout), "--out", str(work)], check=True, capture_output=True,
                         text=True).stdout
    mine = json.loads(out.splitlines()[-1])["losses"]
    theirs = torch_losses(work, args.preset, args.dropout, args.steps)
    diffs = [abs(a - b) for a, b in zip(mine, theirs)]
    worst = max(range(len(diffs)), key=lambda i: diffs[i] / max(abs(theirs[i]), 1e-9))
    every = max(1, args.steps // 10)
    report = {
        "preset": args.preset, "steps": args.steps, "dropout": args.dropout,
        "transduce": [round(x, 4) for x in mine[::every]] + [round(mine[-1], 4)],
        "torch": [round(x, 4) for x in theirs[::every]] + [round(theirs[-1], 4)],
        "at_steps": list(range(0, args.steps, every)) + [args.steps - 1],
        "max_abs_diff": round(max(diffs), 6),
        "max_rel_diff": round(diffs[worst] / abs(theirs[worst]), 6),
        "at_step": worst,
        "mean_abs_diff": round(sum(diffs) / len(diffs), 6),
    }
    if args.dropout > 0:
        # the noise: PyTorch against itself with other dropout masks
        again = torch_losses(work, args.preset, args.dropout, args.steps, seed=1)
        noise = [abs(a - b) for a, b in zip(theirs, again)]
        report["torch_vs_torch_other_masks"] = {"max_abs_diff": round(max(noise), 6),
                                                "mean_abs_diff": round(sum(noise) / len(noise), 6)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
