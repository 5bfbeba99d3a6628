"""PyTorch references for scaled_dot_product_attention, heads_attention and qkv_attention
(tests/op_cases.cpp, same names).

Debian's torch (1.13) has no F.scaled_dot_product_attention (torch 2.0 added it), so the reference
is its explicit formula: softmax(q @ k^T / sqrt(E) + mask, masked_fill(-inf) above the diagonal when
causal) @ v, with torch's is_causal convention (query i sees keys j <= i, the upper triangle of the
(L, S) score matrix is masked, also for L != S).
A row whose scores are all -inf gives NaN in torch; xgrad gives zeros and zero gradients, which
sdpa() below reproduces by taking such rows out of the softmax (their mask entries get no gradient).
"""
import math

import numpy as np
import torch

from common import Case

INF = float("inf")


def sdpa(q, k, v, mask=None, causal=False):
    L, S, E = q.shape[-2], k.shape[-2], q.shape[-1]
    s = q @ k.transpose(-2, -1) / math.sqrt(E)
    if mask is not None:
        s = s + mask
    if causal:
        s = s.masked_fill(torch.ones(L, S, dtype=torch.bool).triu(1), -INF)
    dead = torch.isneginf(s).all(dim=-1, keepdim=True)  # fully masked rows
    p = torch.softmax(s.masked_fill(dead, 0.0), dim=-1).masked_fill(dead, 0.0)
    return p @ v


def heads(q, k, v, h, mask=None, causal=False):
    """heads_attention: the h heads packed in the last axis split out, attended, merged back."""
    def split(x):
        n, rows, width = x.shape
        return x.reshape(n, rows, h, width // h).transpose(1, 2)
    o = sdpa(split(q), split(k), split(v), mask, causal)
    n, _, length, d = o.shape
    return o.transpose(1, 2).reshape(n, length, h * d)


def qkv(x, h, mask=None, causal=False):
    """qkv_attention: heads() of the three thirds of x's last axis."""
    q, k, v = x.chunk(3, dim=-1)
    return heads(q, k, v, h, mask, causal)


# row 1 fully masked, row 2 partly (the same constant in tests/op_cases.cpp)
FULLY_MASKED = np.array([[0.0, 0.5, -1.0, 0.0],
                         [-INF, -INF, -INF, -INF],
                         [-INF, 0.0, -INF, 1.0]])

CASES = [
    Case("sdpa", [(2, 3, 4), (2, 5, 4), (2, 5, 3)], lambda x: sdpa(x[0], x[1], x[2])),
    Case("sdpa_mask", [(3, 4), (5, 4), (5, 2), (3, 5)], lambda x: sdpa(x[0], x[1], x[2], x[3])),
    Case("sdpa_mask_broadcast", [(2, 2, 3, 4), (2, 1, 5, 4), (2, 1, 5, 3), (2, 1, 1, 5)],
         lambda x: sdpa(x[0], x[1], x[2], x[3])),
    Case("sdpa_causal", [(2, 4, 3), (2, 4, 3), (2, 4, 2)], lambda x: sdpa(x[0], x[1], x[2], causal=True)),
    Case("sdpa_causal_L_ne_S", [(3, 3), (5, 3), (5, 2)], lambda x: sdpa(x[0], x[1], x[2], causal=True)),
    Case("sdpa_causal_mask", [(2, 4, 3), (2, 4, 3), (2, 4, 3), (4, 4)],
         lambda x: sdpa(x[0], x[1], x[2], x[3], causal=True)),
    Case("sdpa_fully_masked_row", [(3, 4), (4, 4), (4, 2)],
         lambda x: sdpa(x[0], x[1], x[2], torch.tensor(FULLY_MASKED))),
    Case("sdpa_single_query", [(2, 1, 3), (2, 4, 3), (2, 4, 3)], lambda x: sdpa(x[0], x[1], x[2])),
    # scores near 1e4 (q scaled by 100): no overflow, the softmax is nearly one-hot
    Case("sdpa_large_scores", [(2, 3), (4, 3), (4, 2)], lambda x: sdpa(x[0] * 100.0, x[1] * 100.0, x[2])),
    # heads packed in the last axis: L != S, E != Ev, a mask broadcast over N and L, causal, one head
    Case("heads_attention", [(2, 3, 4), (2, 5, 4), (2, 5, 6)], lambda x: heads(x[0], x[1], x[2], 2)),
    Case("heads_attention_causal_mask", [(2, 4, 6), (2, 4, 6), (2, 4, 3), (3, 1, 4)],
         lambda x: heads(x[0], x[1], x[2], 3, x[3], causal=True)),
    Case("heads_attention_one_head", [(1, 3, 2), (1, 4, 2), (1, 4, 3)], lambda x: heads(x[0], x[1], x[2], 1)),
    # q, k and v as the thirds of one array: two heads; three heads, causal, a mask over N and L
    Case("qkv_attention", [(2, 3, 12)], lambda x: qkv(x[0], 2)),
    Case("qkv_attention_causal_mask", [(2, 4, 9), (3, 1, 4)], lambda x: qkv(x[0], 3, x[1], causal=True)),
]
