"""PyTorch references for the pooling ops (tests/op_cases.cpp, block "pooling (pool)", same names).

xgrad's max_pool2d(x, {kernel, stride, padding}) is F.max_pool2d(x, kernel, stride, padding) (floor
mode, no dilation; stride defaults to the kernel), avg_pool2d(x, {kernel, stride, padding},
count_include_pad) is F.avg_pool2d(x, kernel, stride, padding, count_include_pad=...), and
adaptive_avg_pool2d(x, output) is F.adaptive_avg_pool2d(x, output). The batch_norm2d_* cases are
nn::BatchNorm2d, the layer, against F.batch_norm.
"""
import numpy as np
import torch
import torch.nn.functional as F

from common import Case

nan, inf = float("nan"), float("inf")

CASES = [
    Case("max_pool2d_k2", [(2, 2, 5, 5)], lambda x: F.max_pool2d(x[0], 2)),
    Case("max_pool2d_k3_s1_p1", [(1, 2, 5, 4)], lambda x: F.max_pool2d(x[0], 3, 1, 1)),
    Case("max_pool2d_k3_s2", [(2, 1, 7, 5)], lambda x: F.max_pool2d(x[0], 3, 2)),
    Case("max_pool2d_k2x3_s2x1_p1x0", [(1, 2, 5, 6)], lambda x: F.max_pool2d(x[0], (2, 3), (2, 1), (1, 0))),
    # edge values (explicit inputs; the op case of the same name is gradchecked on random ones):
    # ties (the first maximum in row-major order takes the gradient, as xgrad documents), a
    # constant plane, NaN (the last NaN of a window takes it), +-inf, windows of padding and -inf
    Case("max_pool2d_ties_nan", fn=lambda x: F.max_pool2d(x[0], 2, 1, 1),
         inputs=[np.array([[[[1.0, 3.0, 3.0, 0.0],
                             [3.0, 2.0, 3.0, 3.0],
                             [0.0, 0.0, 5.0, 5.0],
                             [0.0, 0.0, 5.0, 5.0]],
                            [[1.0, nan, 2.0, -inf],
                             [nan, 2.0, -inf, -inf],
                             [inf, 1.0, -inf, -inf],
                             [0.0, inf, -inf, nan]]]])]),
    Case("max_pool2d_large", fn=lambda x: F.max_pool2d(x[0], (2, 3), 1),
         inputs=[np.array([[[[1e308, -1e308, 3e300, 1e-300, -2e-300],
                             [-1.7e308, 2e307, -3e300, 5e-300, 1e-310],
                             [1e-310, -1e-310, 0.0, -0.0, 4e-300],
                             [-1e300, -2e300, -3e300, -4e300, -5e300]]]])]),
    Case("avg_pool2d_k2", [(2, 2, 5, 5)], lambda x: F.avg_pool2d(x[0], 2)),
    Case("avg_pool2d_k3_s1_p1", [(1, 2, 5, 4)], lambda x: F.avg_pool2d(x[0], 3, 1, 1)),
    Case("avg_pool2d_k3_s2_p1_exclude_pad", [(2, 1, 7, 5)],
         lambda x: F.avg_pool2d(x[0], 3, 2, 1, count_include_pad=False)),
    Case("avg_pool2d_k2x3_s2x1_p1x0", [(1, 2, 5, 6)], lambda x: F.avg_pool2d(x[0], (2, 3), (2, 1), (1, 0))),
    Case("avg_pool2d_k2x3_p1_exclude_pad", [(1, 2, 5, 6)],
         lambda x: F.avg_pool2d(x[0], (2, 3), None, 1, count_include_pad=False)),
    # huge and tiny magnitudes of one sign per window (no cancellation, so the order of the sum
    # does not matter at 1e-10)
    Case("avg_pool2d_large", fn=lambda x: F.avg_pool2d(x[0], (2, 3), 1),
         inputs=[np.array([[[[1e300, 3e300, 2.5e300, 7e299, 1.1e300],
                             [5e300, 7e300, 1e300, 2e300, 9e299],
                             [1e-300, 3e-300, 2e-300, 5e-310, 4e-300],
                             [7e-300, 2e-300, 6e-300, 1e-300, 1e-299]]]])]),
    Case("adaptive_avg_pool2d_7x5_to_3x2", [(2, 2, 7, 5)], lambda x: F.adaptive_avg_pool2d(x[0], (3, 2))),
    Case("adaptive_avg_pool2d_3x4_to_5x7", [(1, 2, 3, 4)], lambda x: F.adaptive_avg_pool2d(x[0], (5, 7))),
    Case("adaptive_avg_pool2d_global", [(2, 3, 5, 3)], lambda x: F.adaptive_avg_pool2d(x[0], 1)),
    Case("adaptive_avg_pool2d_6x6_to_3x3", [(1, 2, 6, 6)], lambda x: F.adaptive_avg_pool2d(x[0], 3)),
]


# nn::BatchNorm2d(3, eps 1e-3) with fixed weight, bias and running statistics (tests/op_cases.cpp's
# batch_norm2d_layer): F.batch_norm with the batch's statistics in training, the running ones in eval.
def batch_norm2d(x, training):
    return F.batch_norm(x, torch.tensor([0.5, -1.0, 0.25]), torch.tensor([2.0, 0.5, 1.5]),
                        torch.tensor([1.5, -0.5, 2.0]), torch.tensor([0.25, 0.0, -1.0]),
                        training=training, momentum=0.1, eps=1e-3)


CASES += [
    Case("batch_norm2d_train", [(2, 3, 4, 5)], lambda x: batch_norm2d(x[0], True)),
    Case("batch_norm2d_eval", [(2, 3, 4, 5)], lambda x: batch_norm2d(x[0], False)),
]
