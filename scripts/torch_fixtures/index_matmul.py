"""PyTorch references for issue 13's N-d matmul, bmm, N-d linear and indexing ops (index_select,
gather, scatter_add, embedding): tests/op_cases.cpp, same names, same literal indices."""
import numpy as np
import torch
import torch.nn.functional as F

from common import Case


def T(a):  # transpose of the last two axes (matmul's flags)
    return a.transpose(-1, -2)


def ix(values):
    return torch.tensor(values, dtype=torch.int64)


mm = lambda x: torch.matmul(x[0], x[1])
CASES = [
    Case("matmul_1d_1d", [(4,), (4,)], mm),
    Case("matmul_1d_2d", [(3,), (3, 2)], mm),
    Case("matmul_2d_1d", [(2, 3), (3,)], mm),
    Case("matmul_1d_3d", [(3,), (2, 3, 4)], mm),
    Case("matmul_3d_1d", [(2, 4, 3), (3,)], mm),
    Case("matmul_3d_2d", [(2, 3, 4), (4, 2)], mm),
    Case("matmul_2d_3d", [(3, 4), (2, 4, 2)], mm),
    Case("matmul_3d_3d", [(2, 3, 4), (2, 4, 2)], mm),
    Case("matmul_bcast_batch_1", [(1, 3, 4), (2, 4, 2)], mm),
    Case("matmul_bcast_4d_3d", [(2, 1, 3, 4), (3, 4, 2)], mm),
    Case("matmul_bcast_4d_4d", [(2, 1, 2, 3), (1, 2, 3, 2)], mm),
    Case("matmul_batched_ta", [(2, 4, 3), (4, 2)], lambda x: torch.matmul(T(x[0]), x[1])),
    Case("matmul_batched_tb", [(2, 3, 4), (2, 4)], lambda x: torch.matmul(x[0], T(x[1]))),
    Case("matmul_rows_4d_tb", [(2, 1, 3, 4), (2, 4)], lambda x: torch.matmul(x[0], T(x[1]))),
    Case("torch_linear", [(3, 4), (2, 4), (2,)], lambda x: F.linear(x[0], x[1], x[2])),
    Case("torch_linear_3d", [(2, 3, 4), (5, 4), (5,)], lambda x: F.linear(x[0], x[1], x[2])),
    Case("torch_linear_1d", [(4,), (3, 4), (3,)], lambda x: F.linear(x[0], x[1], x[2])),
    Case("torch_linear_no_bias", [(2, 1, 3), (2, 3)], lambda x: F.linear(x[0], x[1])),
    Case("matmul_batched_ta_tb", [(2, 4, 3), (2, 2, 4)], lambda x: torch.matmul(T(x[0]), T(x[1]))),
    Case("bmm", [(2, 3, 4), (2, 4, 2)], lambda x: torch.bmm(x[0], x[1])),
    Case("linear_3d", [(2, 3, 4), (4, 2), (2,)], lambda x: F.linear(x[0], x[1].T, x[2])),
    Case("linear_1d", [(4,), (4, 2), (2,)], lambda x: F.linear(x[0], x[1].T, x[2])),
    Case("linear_relu_3d", [(2, 2, 4), (4, 3), (3,)], lambda x: F.relu(F.linear(x[0], x[1].T, x[2]))),
    Case("index_select_axis0", [(4, 3)], lambda x: torch.index_select(x[0], 0, ix([2, 0, 2, 3]))),
    Case("index_select_axis_neg", [(2, 3, 4)], lambda x: torch.index_select(x[0], -1, ix([3, 0, 3]))),
    Case("gather_axis1", [(3, 4)], lambda x: torch.gather(x[0], 1, ix([[0, 3], [1, 1], [2, 0]]))),
    Case("gather_axis_neg_3d", [(2, 3, 2)],
         lambda x: torch.gather(x[0], -2, ix([[[2, 0], [0, 0]], [[1, 2], [1, 1]]]))),
    Case("gather_smaller_index", [(3, 4)], lambda x: torch.gather(x[0], 0, ix([[2, 0, 2], [1, 1, 0]]))),
    Case("scatter_add_axis0", [(3, 4), (2, 4)],
         lambda x: torch.scatter_add(x[0], 0, ix([[0, 2, 2, 1], [2, 2, 0, 1]]), x[1])),
    # torch's own backward refuses a src larger than index ("invalid gradient ... got [2, 2] but
    # expected shape compatible with [3, 3]"), so the reference scatters the part of src the
    # index reaches: the same values, and zeros for the rest of src's gradient, as xgrad gives.
    Case("scatter_add_axis_neg_larger_src", [(3, 4), (3, 3)],
         lambda x: torch.scatter_add(x[0], -1, ix([[0, 0], [3, 1]]), x[1][:2, :2])),
    Case("embedding_1d_ids", [(5, 3)], lambda x: F.embedding(ix([4, 0, 4]), x[0])),
    Case("embedding_2d_ids", [(5, 3)], lambda x: F.embedding(ix([[0, 4, 4], [4, 2, 0]]), x[0])),
    # edge values: magnitudes whose products reach 1e300 without overflow; NaN rows looked up
    Case("matmul_bcast_large", inputs=[
        np.random.default_rng(1).uniform(-1, 1, (2, 1, 2, 3)) * 1e150,
        np.random.default_rng(2).uniform(-1, 1, (3, 3, 2)) * 1e150], fn=mm),
    Case("embedding_nan_weight", inputs=[np.array([[1.0, 2.0], [np.nan, 3.0], [4.0, 5.0], [np.inf, -np.inf]])],
         fn=lambda x: F.embedding(ix([3, 1, 3, 3]), x[0])),
]
