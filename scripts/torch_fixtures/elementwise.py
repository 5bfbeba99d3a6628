"""PyTorch references for issue 13's elementwise, activation, selection and dropout ops
(tests/op_cases.cpp, same names), with edge-value cases on explicit inputs: ties, clamp bounds,
tiny and huge magnitudes, infinities and NaN."""
import numpy as np
import torch
import torch.nn.functional as F

from common import Case

T = torch.tensor
inf, nan = float("inf"), float("nan")


def mt19937_64(seed):
    """std::mt19937_64, output by output (the C++ standard's parameters)."""
    mask = (1 << 64) - 1
    n, m = 312, 156
    state = [seed & mask]
    for i in range(1, n):
        state.append((6364136223846793005 * (state[-1] ^ (state[-1] >> 62)) + i) & mask)
    index = n
    while True:
        if index >= n:
            for i in range(n):
                y = (state[i] & 0xFFFFFFFF80000000) | (state[(i + 1) % n] & 0x7FFFFFFF)
                state[i] = state[(i + m) % n] ^ (y >> 1) ^ (0xB5026F5AA96619E9 if y & 1 else 0)
            index = 0
        y = state[index]
        index += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        yield y


def dropout_mask(seed, p, count):
    """xg::dropout's mask: libstdc++'s bernoulli_distribution(1 - p) on mt19937_64 keeps an
    element when generate_canonical (one 64-bit output / 2^64, rounded to double) < 1 - p."""
    gen = mt19937_64(seed)
    scale = 1.0 / (1.0 - p)
    mask = []
    for _ in range(count):
        u = float(next(gen)) / 2.0**64
        if u >= 1.0:
            u = np.nextafter(1.0, 0.0)
        mask.append(scale if u < 1.0 - p else 0.0)
    return np.array(mask)


def column(values):  # a mask of shape (n, 1)
    return T(values).reshape(-1, 1)


large = [np.array([-1e4, -30.0, -5.0, -1e-8, 0.0, 1e-8, 5.0, 1e4])]
CASES = [
    # binary, broadcasting
    Case("maximum", [(3, 4), (3, 4)], lambda x: torch.maximum(x[0], x[1])),
    Case("maximum_bcast_3x1_1x4", [(3, 1), (1, 4)], lambda x: torch.maximum(x[0], x[1])),
    Case("maximum_bcast_scalar", [(2, 3), ()], lambda x: torch.maximum(x[0], x[1])),
    Case("minimum", [(3, 4), (3, 4)], lambda x: torch.minimum(x[0], x[1])),
    Case("minimum_bcast_2x3_3", [(2, 3), (3,)], lambda x: torch.minimum(x[0], x[1])),
    Case("minimum_bcast_2x1x3_4x1", [(2, 1, 3), (4, 1)], lambda x: torch.minimum(x[0], x[1])),
    # ties: the gradient split half and half
    Case("maximum_ties", inputs=[np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]]),
                                 np.array([[1.0, 1.0, 4.0], [0.0, -1.5, 5.0]])],
         fn=lambda x: torch.maximum(x[0], x[1])),
    Case("minimum_ties_bcast", inputs=[np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 0.0]]), np.array([1.0, 2.0, 0.5])],
         fn=lambda x: torch.minimum(x[0], x[1])),
    # clamp: bounds included in the gradient
    Case("clamp", [(3, 4)], lambda x: torch.clamp(x[0], -1.0, 0.5)),
    Case("clamp_lo_only", [(3, 4)], lambda x: torch.clamp(x[0], min=0.25)),
    Case("clamp_at_bounds", inputs=[np.array([[-2.0, -1.0, -0.5, 0.0], [0.5, 0.75, 1e300, -1e300]])],
         fn=lambda x: torch.clamp(x[0], -1.0, 0.5)),
    # unary
    Case("sin", [(2, 3)], lambda x: torch.sin(x[0])),
    Case("cos", [(2, 3)], lambda x: torch.cos(x[0])),
    Case("log1p", [(2, 3)], lambda x: torch.log1p(x[0]), "positive"),
    Case("expm1", [(2, 3)], lambda x: torch.expm1(x[0])),
    Case("log1p_small", inputs=[np.array([[1e-10, 1e-15, 1e-300], [0.0, 1e-5, 3.0]])], fn=lambda x: torch.log1p(x[0])),
    Case("expm1_small", inputs=[np.array([[1e-10, -1e-12, 1e-300], [-30.0, 0.0, 5.0]])], fn=lambda x: torch.expm1(x[0])),
    Case("square", [(2, 3)], lambda x: torch.square(x[0])),
    Case("reciprocal", [(2, 3)], lambda x: torch.reciprocal(x[0]), "away_from_zero"),
    Case("rsqrt", [(2, 3)], lambda x: torch.rsqrt(x[0]), "positive"),
    # activations
    Case("gelu", [(3, 4)], lambda x: F.gelu(x[0])),
    Case("gelu_tanh", [(3, 4)], lambda x: F.gelu(x[0], approximate="tanh")),
    Case("silu", [(3, 4)], lambda x: F.silu(x[0])),
    Case("elu", [(3, 4)], lambda x: F.elu(x[0]), "away_from_zero"),
    Case("elu_alpha", [(3, 4)], lambda x: F.elu(x[0], 0.5), "away_from_zero"),
    Case("hardtanh", [(3, 4)], lambda x: F.hardtanh(x[0])),
    Case("hardtanh_bounds", [(3, 4)], lambda x: F.hardtanh(x[0], -0.5, 1.5)),
    Case("softsign", [(3, 4)], lambda x: F.softsign(x[0]), "away_from_zero"),
    Case("gelu_large", inputs=large, fn=lambda x: F.gelu(x[0])),
    Case("gelu_tanh_large", inputs=large, fn=lambda x: F.gelu(x[0], approximate="tanh")),
    Case("silu_large", inputs=large, fn=lambda x: F.silu(x[0])),
    Case("elu_large_and_zero", inputs=[np.array([-1e4, -30.0, -1.0, -1e-8, 0.0, 1e-8, 1.0, 1e4])],
         fn=lambda x: F.elu(x[0], 0.5)),
    Case("softsign_large", inputs=[np.array([-1e300, -1e4, -1.0, -1e-8, 1e-8, 1.0, 1e4, 1e300])],
         fn=lambda x: F.softsign(x[0])),
    Case("hardtanh_at_bounds", inputs=[np.array([[-2.0, -1.0, -0.5, 0.0], [0.999, 1.0, 1.5, -1.0000001]])],
         fn=lambda x: F.hardtanh(x[0])),
    # selection
    Case("where", [(2, 3), (2, 3)], lambda x: torch.where(T([[True, False, True], [False, False, True]]), x[0], x[1])),
    Case("where_bcast_mask_2x1_a_3_b_scalar", [(3,), ()], lambda x: torch.where(column([True, False]), x[0], x[1])),
    Case("where_bcast_mask_3_a_2x1_b_1x3", [(2, 1), (1, 3)], lambda x: torch.where(T([False, True, True]), x[0], x[1])),
    Case("where_scalar_b", [(2, 3)], lambda x: torch.where(T([True, False, True]), x[0], T(0.5))),
    Case("where_scalar_a", [(2, 3)], lambda x: torch.where(T([True, False, True]), T(-1.5), x[0])),
    Case("masked_fill", [(2, 3)], lambda x: x[0].masked_fill(T([[True, False, False], [False, True, False]]), 2.5)),
    Case("masked_fill_bcast_x_3_mask_2x1", [(3,)], lambda x: x[0].masked_fill(column([False, True]), -1.0)),
    Case("where_lt_bcast", [(2, 3), (3,)], lambda x: torch.where(x[0] < x[1], x[0], x[1])),
    Case("where_isfinite", inputs=[np.array([[1.0, inf, -inf], [nan, 2.0, -3.0]])],
         fn=lambda x: torch.where(torch.isfinite(x[0]), x[0], T(0.0))),
    Case("masked_fill_gt_scalar", [(3, 4)], lambda x: x[0].masked_fill(x[0] > 0.5, 0.5)),
    Case("where_ge_eq_ne_le", inputs=[np.array([[0.0, 1.0, -1.0], [2.0, -0.5, 3.0]]),
                                      np.array([[0.0, 2.0, -1.0], [-1.0, -0.5, 1.0]])],
         fn=lambda x: (lambda y: torch.where(x[0] <= x[1], y, y * 3.0))(
             (lambda y: torch.where(x[1] != -1.0, y, x[0] * 2.0))(
                 (lambda y: torch.where(x[0] == x[1], x[1], y))(torch.where(x[0] >= 0.0, x[0], x[1]))))),
    # dropout: the mask of xg::dropout(x, 0.4, true, mt19937_64(7)), recomputed here
    Case("dropout", [(3, 4)], lambda x: x[0] * T(dropout_mask(7, 0.4, 12).reshape(3, 4))),
]
