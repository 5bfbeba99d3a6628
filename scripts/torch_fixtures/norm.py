"""PyTorch references for layer_norm and batch_norm (tests/op_cases.cpp, same names).

xgrad's layer_norm(x, normalized_shape, gamma, beta, eps) is F.layer_norm(x, normalized_shape,
weight=gamma, bias=beta, eps=eps); batch_norm(x, gamma, beta, eps) is F.batch_norm(x, None, None,
weight=gamma, bias=beta, training=True, eps=eps); an undefined gamma or beta is None.
"""
import numpy as np
import torch.nn.functional as F

from common import Case


def bn(x, gamma=None, beta=None, eps=1e-5):
    return F.batch_norm(x, None, None, weight=gamma, bias=beta, training=True, eps=eps)


CASES = [
    Case("layer_norm", [(3, 5), (5,), (5,)], lambda x: F.layer_norm(x[0], (5,), x[1], x[2])),
    Case("layer_norm_no_affine", [(3, 4)], lambda x: F.layer_norm(x[0], (4,))),
    Case("layer_norm_gamma_only", [(2, 4), (4,)], lambda x: F.layer_norm(x[0], (4,), x[1])),
    Case("layer_norm_beta_only", [(2, 4), (4,)], lambda x: F.layer_norm(x[0], (4,), None, x[1])),
    Case("layer_norm_3d_last_axis", [(2, 3, 4), (4,), (4,)], lambda x: F.layer_norm(x[0], (4,), x[1], x[2], 1e-3)),
    Case("layer_norm_3d_two_axes", [(2, 3, 4), (3, 4), (3, 4)], lambda x: F.layer_norm(x[0], (3, 4), x[1], x[2])),
    Case("layer_norm_whole_input", [(2, 3)], lambda x: F.layer_norm(x[0], (2, 3))),
    # edge values (explicit inputs; the op cases of the same names are gradchecked on random ones)
    # rows offset by 1e4 (E[x^2] - E[x]^2 would cancel; a larger offset makes torch 1.13's CPU kernel,
    # which computes x * rstd - mean * rstd, lose digits: 3e-9 at 1e8, where xgrad's stays exact),
    # of scale 1e150 (squares near 1e300) and of scale 1e-150 (variance far below eps)
    Case("layer_norm_large_magnitude", fn=lambda x: F.layer_norm(x[0], (4,), x[1], x[2]),
         inputs=[np.array([[1e4 + 1.0, 1e4 + 2.0, 1e4 + 3.0, 1e4 + 5.0],
                           [1e150, -1e150, 3e150, 0.0],
                           [1e-150, -2e-150, 3e-150, 5e-151]]),
                 np.array([1.5, -0.5, 2.0, 1.0]), np.array([0.25, 0.0, -1.0, 3.0])]),
    # a constant row: variance 0, so the output is beta and the gradient is scaled by 1 / sqrt(eps)
    Case("layer_norm_constant_row", fn=lambda x: F.layer_norm(x[0], (4,), x[1], x[2], 1e-2),
         inputs=[np.array([[1.5, 1.5, 1.5, 1.5], [0.5, -1.0, 2.0, 0.0]]),
                 np.array([1.5, -0.5, 2.0, 1.0]), np.array([0.25, 0.0, -1.0, 3.0])]),
    Case("batch_norm", [(4, 3), (3,), (3,)], lambda x: bn(x[0], x[1], x[2])),
    Case("batch_norm_no_affine", [(3, 4)], lambda x: bn(x[0])),
    Case("batch_norm_gamma_only", [(3, 2), (2,)], lambda x: bn(x[0], x[1])),
    Case("batch_norm_beta_only", [(3, 2), (2,)], lambda x: bn(x[0], None, x[1])),
    Case("batch_norm_3d", [(2, 3, 4), (3,), (3,)], lambda x: bn(x[0], x[1], x[2], 1e-3)),
    Case("batch_norm_4d", [(2, 3, 2, 3), (3,), (3,)], lambda x: bn(x[0], x[1], x[2])),
    # columns offset by 1e4, of scale 1e150 and of scale 1e-150 (variance far below eps), and a
    # fourth of mixed signs
    Case("batch_norm_large_magnitude", fn=lambda x: bn(x[0], x[1], x[2]),
         inputs=[np.array([[1e4 + 1.0, 1e150, 1e-150, -3.0],
                           [1e4 + 2.0, -1e150, -2e-150, 0.5],
                           [1e4 + 5.0, 3e150, 3e-150, 2.0]]),
                 np.array([1.5, -0.5, 2.0, 1.0]), np.array([0.25, 0.0, -1.0, 3.0])]),
    # a constant column: variance 0, so the output is beta and the gradient is scaled by 1 / sqrt(eps)
    Case("batch_norm_constant_column", fn=lambda x: bn(x[0], x[1], x[2], 1e-2),
         inputs=[np.array([[1.5, 0.5], [1.5, -1.0], [1.5, 2.0]]), np.array([1.5, -0.5]), np.array([0.25, 3.0])]),
    Case("batch_norm_two_values", [(2, 3), (3,), (3,)], lambda x: bn(x[0], x[1], x[2])),
]
