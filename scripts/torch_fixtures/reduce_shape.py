"""PyTorch references for issue 13's reductions and shape ops (tests/op_cases.cpp, same names).

xgrad's max/min over axes share the gradient among ties as torch.amax/amin do, so they are
compared with amax/amin. xgrad's pad takes one (before, after) pair per axis, first axis first;
F.pad takes them last axis first: pad(x, {{a, b}, {c, d}}) is F.pad(x, (c, d, a, b)).
"""
import numpy as np
import torch
import torch.nn.functional as F

from common import Case

inf = np.inf

CASES = [
    # reductions
    Case("min_all", [(3, 4)], lambda x: x[0].amin()),
    Case("min_axis1", [(3, 4)], lambda x: x[0].amin(1)),
    Case("min_axis_neg_keepdims", [(2, 3, 4)], lambda x: x[0].amin(-2, keepdim=True)),
    Case("sum_axes_0_2", [(2, 3, 4)], lambda x: x[0].sum((0, 2))),
    Case("sum_axes_neg_keepdims", [(2, 3, 4)], lambda x: x[0].sum((-1, -3), keepdim=True)),
    Case("sum_axes_empty_keepdims", [(2, 3)], lambda x: x[0].sum((0, 1), keepdim=True)),
    Case("mean_axes_1_2", [(2, 3, 4)], lambda x: x[0].mean((1, 2))),
    Case("mean_axes_keepdims", [(2, 3, 4)], lambda x: x[0].mean((0, -1), keepdim=True)),
    Case("max_axes_0_2", [(2, 3, 4)], lambda x: x[0].amax((0, 2))),
    Case("max_axes_last_keepdims", [(2, 3, 4)], lambda x: x[0].amax((-1, -2), keepdim=True)),
    Case("min_axes_2_0", [(2, 3, 4)], lambda x: x[0].amin((2, 0))),
    Case("logsumexp_axis1", [(3, 4)], lambda x: torch.logsumexp(x[0], 1)),
    Case("logsumexp_axis0_keepdims", [(3, 4)], lambda x: torch.logsumexp(x[0], 0, keepdim=True)),
    Case("logsumexp_axis_neg_3d", [(2, 3, 4)], lambda x: torch.logsumexp(x[0], -2)),
    Case("var_all", [(3, 4)], lambda x: x[0].var()),
    Case("var_axis1_biased", [(3, 4)], lambda x: x[0].var(1, unbiased=False)),
    Case("var_axes_keepdims", [(2, 3, 4)], lambda x: x[0].var((0, 2), unbiased=True, keepdim=True)),
    Case("std_all", [(3, 4)], lambda x: x[0].std()),
    Case("std_axis0", [(3, 4)], lambda x: x[0].std(0)),
    Case("std_axes_biased_keepdims", [(2, 3, 4)], lambda x: x[0].std((-1, 0), unbiased=False, keepdim=True)),
    Case("prod_all", [(2, 3)], lambda x: x[0].prod()),
    Case("prod_axis1", [(3, 4)], lambda x: x[0].prod(1)),
    Case("prod_axis0_keepdims", [(3, 4)], lambda x: x[0].prod(0, keepdim=True)),
    Case("prod_axis_neg_3d", [(2, 3, 4)], lambda x: x[0].prod(-2)),
    # edge values (explicit inputs; the op cases of the same names are gradchecked on random ones)
    Case("min_axis1_ties", fn=lambda x: x[0].amin(1),
         inputs=[np.array([[3.0, 1.0, 1.0, 2.0], [0.0, 5.0, -2.0, -2.0], [4.0, 4.0, 4.0, 4.0]])]),
    Case("max_axes_ties", fn=lambda x: x[0].amax((0, 2)),
         inputs=[np.array([[[1.0, 4.0], [4.0, 0.0]], [[4.0, 2.0], [3.0, 4.0]]])]),
    Case("logsumexp_extremes", fn=lambda x: torch.logsumexp(x[0], 1),
         inputs=[np.array([[1000.0, 1000.0, 0.0], [-1000.0, -999.0, -1001.0], [-inf, -inf, -inf], [inf, 1.0, 0.0],
                           [1e308, 1e308, -1e308]])]),
    Case("std_zero_variance", fn=lambda x: x[0].std(1),
         inputs=[np.array([[1.5, 1.5, 1.5], [1.0, 2.0, 4.0]])]),
    Case("prod_axis1_zeros", fn=lambda x: x[0].prod(1),
         inputs=[np.array([[1.0, 0.0, 2.0, 0.0], [0.0, 5.0, 3.0, 2.0], [1.5, -2.0, 3.0, 0.5], [0.0, 0.0, 0.0, 0.0]])]),
    Case("prod_all_one_zero", fn=lambda x: x[0].prod(),
         inputs=[np.array([[1.5, -2.0, 3.0], [0.0, 0.5, 2.0]])]),
    # shape
    Case("squeeze_all", [(1, 3, 1, 2)], lambda x: x[0].squeeze()),
    Case("squeeze_axis_neg", [(3, 1, 2)], lambda x: x[0].squeeze(-2)),
    Case("unsqueeze_axis1", [(2, 3)], lambda x: x[0].unsqueeze(1)),
    Case("unsqueeze_axis_neg", [(2, 3)], lambda x: x[0].unsqueeze(-1)),
    Case("flatten_all", [(2, 3, 4)], lambda x: x[0].flatten()),
    Case("flatten_1_2", [(2, 3, 4, 2)], lambda x: x[0].flatten(1, 2)),
    Case("stack_axis0", [(2, 3), (2, 3), (2, 3)], lambda x: torch.stack(x, 0)),
    Case("stack_axis_neg", [(2, 3), (2, 3)], lambda x: torch.stack(x, -1)),
    Case("split_size", [(5, 3)],
         lambda x: (lambda p: torch.cat([p[2], p[0] * 2.0, p[1] * 3.0], 0))(torch.split(x[0], 2))),
    Case("split_sizes_axis1", [(3, 5)],
         lambda x: (lambda p: torch.cat([p[2] * 2.0, p[0], torch.exp(p[1])], 1))(torch.split(x[0], [1, 3, 1], 1))),
    Case("chunk", [(7, 2)],
         lambda x: (lambda p: torch.cat([p[1], p[2] * 2.0, p[0] * 3.0], 0))(torch.chunk(x[0], 3))),
    Case("pad_2d", [(2, 3)], lambda x: F.pad(x[0], (2, 1, 1, 0), value=0.5)),
    Case("pad_crop", [(4, 5)], lambda x: F.pad(x[0], (1, -2, -1, 2))),
    Case("flip", [(2, 3, 4)], lambda x: torch.flip(x[0], [0, -1])),
    Case("repeat", [(2, 3)], lambda x: x[0].repeat(2, 1, 3)),
    Case("tile", [(2, 3)], lambda x: torch.tile(x[0], (2,))),
    Case("permute", [(2, 3, 4)], lambda x: x[0].permute(-1, 0, 1)),
    Case("expand", [(3, 1)], lambda x: x[0].expand(2, -1, 4)),
]
