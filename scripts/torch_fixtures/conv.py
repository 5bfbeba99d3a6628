"""PyTorch references for conv2d, its fused forms and conv_transpose2d (tests/op_cases.cpp, same names).

xgrad's conv2d(x, w, b, {.stride, .padding, .dilation, .groups}) is F.conv2d(x, w, b, stride,
padding, dilation, groups); conv_transpose2d(x, w, b, {.stride, .padding, .output_padding,
.groups, .dilation}) is F.conv_transpose2d(x, w, b, stride, padding, output_padding, groups,
dilation), in the same order. An undefined bias is None.
"""
import torch
import torch.nn.functional as F

from common import Case

CASES = [
    Case("conv2d", [(2, 3, 5, 5), (4, 3, 3, 3), (4,)], lambda x: F.conv2d(x[0], x[1], x[2])),
    Case("conv2d_no_bias", [(2, 3, 5, 5), (4, 3, 3, 3)], lambda x: F.conv2d(x[0], x[1])),
    Case("conv2d_stride2_pad1", [(2, 3, 5, 5), (4, 3, 3, 3), (4,)],
         lambda x: F.conv2d(x[0], x[1], x[2], stride=2, padding=1)),
    Case("conv2d_dilation2", [(2, 2, 5, 5), (3, 2, 2, 2), (3,)],
         lambda x: F.conv2d(x[0], x[1], x[2], padding=1, dilation=2)),
    Case("conv2d_groups2", [(2, 4, 5, 5), (4, 2, 3, 3), (4,)], lambda x: F.conv2d(x[0], x[1], x[2], groups=2)),
    Case("conv2d_depthwise", [(2, 3, 4, 4), (3, 1, 3, 3)], lambda x: F.conv2d(x[0], x[1], None, padding=1, groups=3)),
    Case("conv2d_nonsquare_kernel", [(2, 3, 5, 4), (2, 3, 3, 2), (2,)],
         lambda x: F.conv2d(x[0], x[1], x[2], stride=(2, 1), padding=(1, 0))),
    Case("conv2d_1x1", [(2, 3, 4, 4), (2, 3, 1, 1), (2,)], lambda x: F.conv2d(x[0], x[1], x[2])),
    Case("conv2d_relu", [(2, 3, 5, 5), (4, 3, 3, 3), (4,)], lambda x: F.relu(F.conv2d(x[0], x[1], x[2], padding=1))),
    Case("conv2d_relu_no_bias_groups2", [(2, 4, 5, 6), (4, 2, 3, 2)],
         lambda x: F.relu(F.conv2d(x[0], x[1], None, stride=2, groups=2))),
    Case("conv2d_relu_max_pool2d", [(2, 3, 6, 7), (4, 3, 3, 3), (4,)],
         lambda x: F.max_pool2d(F.relu(F.conv2d(x[0], x[1], x[2], padding=1)), 2)),
    Case("conv2d_relu_max_pool2d_stride2_no_bias", [(2, 2, 9, 8), (3, 2, 3, 2)],
         lambda x: F.max_pool2d(F.relu(F.conv2d(x[0], x[1], None, stride=2)), 2)),
    Case("conv2d_relu_max_pool2d_flat", [(2, 3, 6, 7), (4, 3, 3, 3), (4,)],
         lambda x: torch.flatten(F.max_pool2d(F.relu(F.conv2d(x[0], x[1], x[2], padding=1)), 2), 1)),
    Case("conv_transpose2d", [(2, 3, 4, 4), (3, 2, 3, 3), (2,)], lambda x: F.conv_transpose2d(x[0], x[1], x[2])),
    Case("conv_transpose2d_no_bias", [(2, 3, 4, 3), (3, 2, 2, 3)], lambda x: F.conv_transpose2d(x[0], x[1])),
    Case("conv_transpose2d_stride2_outpad1", [(2, 3, 3, 3), (3, 2, 3, 3), (2,)],
         lambda x: F.conv_transpose2d(x[0], x[1], x[2], stride=2, padding=1, output_padding=1)),
    Case("conv_transpose2d_groups2", [(2, 4, 3, 3), (4, 1, 3, 3), (2,)],
         lambda x: F.conv_transpose2d(x[0], x[1], x[2], groups=2)),
    Case("conv_transpose2d_dilation2", [(2, 2, 3, 3), (2, 3, 2, 2), (3,)],
         lambda x: F.conv_transpose2d(x[0], x[1], x[2], output_padding=1, dilation=2)),
]
