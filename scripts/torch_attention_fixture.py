#!/usr/bin/python3
"""Writes tests/data/torch_attention.npz: torch's MultiheadAttention and a torch twin of
xg::nn::TransformerBlock, in float64 with a fixed seed, for tests/test_attention.cpp.

Usage: scripts/torch_attention_fixture.py   (Debian's python3-torch: /usr/bin/python3)

For each case NAME the file holds
  NAME/param/<torch state_dict name>   the weights (random, not torch's init: every one matters)
  NAME/in/<input>                      the inputs (q, k, v, mask, x)
  NAME/out                             torch's output
  NAME/gout                            an upstream gradient (uniform in [-1, 1])
  NAME/grad/<input>, NAME/grad/param/<name>   gradients of sum(out * gout)
Cases:
  mha_self_causal   MultiheadAttention(6, 2, batch_first=True), self-attention x (2, 4, 6), causal
                    (torch 1.13 has no is_causal: a float attn_mask with -inf above the diagonal)
  mha_cross_mask    MultiheadAttention(6, 3, batch_first=True), q (2, 3, 6), k and v (2, 5, 6), an
                    additive float mask (3, 5)
  block             TransformerBlock(8, 2) twin: x (2, 5, 8), causal
"""
import pathlib

import numpy as np
import torch
import torch.nn as tnn

torch.manual_seed(15)
torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(15)
entries = {}


class Block(tnn.Module):
    """xg::nn::TransformerBlock in torch: pre-norm, causal self-attention, GELU MLP."""

    def __init__(self, d, heads, ratio=4):
        super().__init__()
        self.ln1 = tnn.LayerNorm(d)
        self.attn = tnn.MultiheadAttention(d, heads, batch_first=True)
        self.ln2 = tnn.LayerNorm(d)
        self.mlp = tnn.Sequential(tnn.Linear(d, ratio * d), tnn.GELU(), tnn.Linear(ratio * d, d))

    def forward(self, x, mask):
        a = self.ln1(x)
        h = x + self.attn(a, a, a, attn_mask=mask, need_weights=False)[0]
        return h + self.mlp(self.ln2(h))


def causal_mask(L, S):
    return torch.zeros(L, S).masked_fill(torch.ones(L, S, dtype=torch.bool).triu(1), float("-inf"))


def randomize(module):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.6, 0.6, tuple(p.shape))))


def record(name, module, inputs, run):
    randomize(module)
    for key, value in module.state_dict().items():
        entries[f"{name}/param/{key}"] = value.detach().numpy().copy()
    xs = {k: torch.tensor(v, requires_grad=True) for k, v in inputs.items()}
    out = run(module, xs)
    gout = torch.tensor(rng.uniform(-1.0, 1.0, tuple(out.shape)))
    params = dict(module.named_parameters())
    grads = torch.autograd.grad(out, list(xs.values()) + list(params.values()), gout)
    for (k, x), g in zip(xs.items(), grads[:len(xs)]):
        entries[f"{name}/in/{k}"] = x.detach().numpy()
        entries[f"{name}/grad/{k}"] = g.numpy()
    for k, g in zip(params, grads[len(xs):]):
        entries[f"{name}/grad/param/{k}"] = g.numpy()
    entries[f"{name}/out"] = out.detach().numpy()
    entries[f"{name}/gout"] = gout.numpy()


record("mha_self_causal", tnn.MultiheadAttention(6, 2, batch_first=True),
       {"x": rng.uniform(-1.5, 1.5, (2, 4, 6))},
       lambda m, xs: m(xs["x"], xs["x"], xs["x"], attn_mask=causal_mask(4, 4), need_weights=False)[0])
record("mha_cross_mask", tnn.MultiheadAttention(6, 3, batch_first=True),
       {"q": rng.uniform(-1.5, 1.5, (2, 3, 6)), "k": rng.uniform(-1.5, 1.5, (2, 5, 6)),
        "v": rng.uniform(-1.5, 1.5, (2, 5, 6)), "mask": rng.uniform(-1.0, 1.0, (3, 5))},
       lambda m, xs: m(xs["q"], xs["k"], xs["v"], attn_mask=xs["mask"], need_weights=False)[0])
record("block", Block(8, 2), {"x": rng.uniform(-1.5, 1.5, (2, 5, 8))},
       lambda m, xs: m(xs["x"], causal_mask(5, 5)))

out_path = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "torch_attention.npz"
np.savez(out_path, **entries)
print(f"{out_path}: {len(entries)} arrays, torch {torch.__version__}")
