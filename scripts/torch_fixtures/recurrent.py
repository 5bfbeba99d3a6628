"""PyTorch references for lstm_cell (tests/op_cases.cpp, same names).

torch's fused LSTM cell (_thnn_fused_lstm_cell) runs on CUDA only, so the reference is the cell
of torch.nn.LSTMCell written out: gates = x_gates + h_gates chunked i, f, g, o along the last
axis, c' = sigmoid(f) c + sigmoid(i) tanh(g), h' = sigmoid(o) tanh(c').
"""
import numpy as np
import torch

from common import Case


def lstm_cell(x_gates, h_gates=None, c=None):
    gates = x_gates if h_gates is None else x_gates + h_gates
    i, f, g, o = gates.chunk(4, -1)
    c_next = torch.sigmoid(i) * torch.tanh(g)
    if c is not None:
        c_next = c_next + torch.sigmoid(f) * c
    return torch.sigmoid(o) * torch.tanh(c_next), c_next


def both(h_c):
    return h_c[0] * h_c[1]


# pre-activations of +-30 and 0 (sigmoid and tanh saturated, and at their centre), a large state
LARGE = [np.array([[30.0, -30.0, 0.0, 12.0, -30.0, 30.0, 0.0, -12.0],
                   [0.0, 0.0, 30.0, -30.0, 30.0, 0.0, -30.0, 0.0]]),
         np.array([[0.5, 0.0, -0.5, 0.0, 0.0, 0.0, 0.0, 0.0],
                   [0.0, -0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]]),
         np.array([[1e3, -1e3], [0.0, 25.0]])]

CASES = [
    Case("lstm_cell", [(3, 8), (3, 8), (3, 2)], lambda x: both(lstm_cell(x[0], x[1], x[2]))),
    Case("lstm_cell_h", [(2, 12), (2, 12), (2, 3)], lambda x: lstm_cell(x[0], x[1], x[2])[0]),
    Case("lstm_cell_c", [(2, 12), (2, 12), (2, 3)], lambda x: lstm_cell(x[0], x[1], x[2])[1]),
    Case("lstm_cell_no_state", [(3, 8)], lambda x: both(lstm_cell(x[0]))),
    Case("lstm_cell_step", [(3, 2, 8), (2, 8), (2, 2)], lambda x: both(lstm_cell(x[0][1], x[1], x[2]))),
    Case("lstm_cell_step_no_h", [(2, 3, 4), (3, 1)], lambda x: sum(lstm_cell(x[0][0], None, x[1]))),
    Case("lstm_cell_large", inputs=LARGE, fn=lambda x: both(lstm_cell(x[0], x[1], x[2]))),
]
