#!/usr/bin/python3
"""Writes tests/data/torch_recurrent.npz: torch.nn's recurrent layers and cells in float64, for
tests/test_recurrent.cpp to load into xgrad's (load_state_dict) and compare (relative 1e-10).

Usage: scripts/torch_recurrent_fixture.py   (Debian's python3-torch: apt-get install python3-torch)

Inputs are (L, N, 4) or (N, L, 4) with N = 2, hidden size 3, L = 3 unless the case gives a longer
sequence; cells take (N, 4). Each case NAME (its configuration is in CASES below and in the test's
table) holds:
  NAME/param/<torch name>   the state_dict (weight_ih_l0, weight_hh_l0, bias_ih_l0, ...)
  NAME/x, NAME/h0, NAME/c0  the input and the initial states (h0/c0 only when the case has them)
  NAME/out, NAME/h_n, NAME/c_n   torch's output and final states (c_n: LSTM only; cells: out only)
  NAME/gout, NAME/gh_n, NAME/gc_n   random upstream gradients (uniform in [-1, 1])
  NAME/grad/x, NAME/grad/h0, NAME/grad/c0, NAME/grad/param/<name>
      the gradients of sum(out * gout) + sum(h_n * gh_n) + sum(c_n * gc_n)
The case lstm_tbptt runs an LSTM over x in two chunks of 3 steps, carrying the state detached
between them; out1, out2, gout1, gout2 and the loss sum(out1 * gout1) + sum(out2 * gout2) +
sum(h_n * gh_n) + sum(c_n * gc_n) (h_n, c_n after the second chunk) replace out and gout.
The suite never needs PyTorch: the .npz is committed.
"""
import pathlib

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
out_path = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "torch_recurrent.npz"

H_IN, H, L, N = 4, 3, 3, 2

# name: (module kind, num_layers, bias, batch_first, initial state given, nonlinearity[, sequence length])
CASES = {
    "rnn_tanh": ("RNN", 2, True, False, True, "tanh"),
    "rnn_tanh_bf": ("RNN", 2, True, True, True, "tanh"),
    "rnn_relu": ("RNN", 2, True, False, True, "relu"),
    "rnn_relu_bf": ("RNN", 2, True, True, False, "relu"),
    "gru": ("GRU", 2, True, False, True, None),
    "gru_bf": ("GRU", 2, True, True, True, None),
    "gru_nobias_nostate": ("GRU", 2, False, False, False, None),
    "lstm": ("LSTM", 2, True, False, True, None),
    "lstm_bf": ("LSTM", 2, True, True, True, None),
    "lstm_nobias_nostate_bf": ("LSTM", 2, False, True, False, None),
    "lstm_one_layer": ("LSTM", 1, True, False, True, None),
    # longer sequences: the layers slice their projections through a tree of blocks past 4 steps
    "rnn_relu_long": ("RNN", 2, True, False, True, "relu", 9),
    "gru_long_bf": ("GRU", 2, True, True, True, None, 17),
    "lstm_long": ("LSTM", 2, True, False, False, None, 10),
    "lstm_long_bf": ("LSTM", 2, True, True, True, None, 21),
    "rnn_cell": ("RNNCell", 1, True, False, True, "tanh"),
    "rnn_cell_relu": ("RNNCell", 1, True, False, True, "relu"),
    "gru_cell": ("GRUCell", 1, True, False, True, None),
    "gru_cell_nostate": ("GRUCell", 1, True, False, False, None),
    "lstm_cell": ("LSTMCell", 1, True, False, True, None),
    "lstm_cell_nobias_nostate": ("LSTMCell", 1, False, False, False, None),
}

entries = {}


def u(*shape):
    return torch.rand(*shape) * 2 - 1


def save(name, key, t):
    entries[f"{name}/{key}"] = t.detach().numpy().astype(np.float64)


def build(kind, layers, bias, batch_first, nonlinearity):
    if kind == "RNN":
        return torch.nn.RNN(H_IN, H, layers, nonlinearity=nonlinearity, bias=bias, batch_first=batch_first)
    if kind == "GRU":
        return torch.nn.GRU(H_IN, H, layers, bias=bias, batch_first=batch_first)
    if kind == "LSTM":
        return torch.nn.LSTM(H_IN, H, layers, bias=bias, batch_first=batch_first)
    if kind == "RNNCell":
        return torch.nn.RNNCell(H_IN, H, bias=bias, nonlinearity=nonlinearity)
    if kind == "GRUCell":
        return torch.nn.GRUCell(H_IN, H, bias=bias)
    return torch.nn.LSTMCell(H_IN, H, bias=bias)


def run_case(name, kind, layers, bias, batch_first, with_state, nonlinearity, L=L):
    m = build(kind, layers, bias, batch_first, nonlinearity)
    for k, v in m.state_dict().items():
        save(name, f"param/{k}", v)
    cell = kind.endswith("Cell")
    x = (u(N, H_IN) if cell else u(N, L, H_IN) if batch_first else u(L, N, H_IN)) * 2
    x.requires_grad_(True)
    save(name, "x", x)
    state_shape = (N, H) if cell else (layers, N, H)
    inputs = [x]
    h0 = c0 = None
    if with_state:
        h0 = u(*state_shape).requires_grad_(True)
        save(name, "h0", h0)
        inputs.append(h0)
        if kind.startswith("LSTM"):
            c0 = u(*state_shape).requires_grad_(True)
            save(name, "c0", c0)
            inputs.append(c0)
    if kind == "LSTMCell":
        out, c = m(x, (h0, c0)) if with_state else m(x)
        outs = {"out": out, "c_n": c}
    elif cell:
        outs = {"out": m(x, h0) if with_state else m(x)}
    elif kind == "LSTM":
        out, (h, c) = m(x, (h0, c0)) if with_state else m(x)
        outs = {"out": out, "h_n": h, "c_n": c}
    else:
        out, h = m(x, h0) if with_state else m(x)
        outs = {"out": out, "h_n": h}
    loss = 0
    for key, t in outs.items():
        g = u(*t.shape)
        save(name, key, t)
        save(name, "g" + key if key != "out" else "gout", g)
        loss = loss + (t * g).sum()
    params = dict(m.named_parameters())
    grads = torch.autograd.grad(loss, inputs + list(params.values()))
    save(name, "grad/x", grads[0])
    if with_state:
        save(name, "grad/h0", grads[1])
        if c0 is not None:
            save(name, "grad/c0", grads[2])
    for k, g in zip(params, grads[len(inputs):]):
        save(name, f"grad/param/{k}", g)


def tbptt():
    name = "lstm_tbptt"
    m = torch.nn.LSTM(H_IN, H, 2)
    for k, v in m.state_dict().items():
        save(name, f"param/{k}", v)
    x = (u(2 * L, N, H_IN) * 2).requires_grad_(True)
    h0 = u(2, N, H).requires_grad_(True)
    c0 = u(2, N, H).requires_grad_(True)
    for k, t in (("x", x), ("h0", h0), ("c0", c0)):
        save(name, k, t)
    out1, (h1, c1) = m(x[:L], (h0, c0))
    out2, (h2, c2) = m(x[L:], (h1.detach(), c1.detach()))
    g1, g2, gh, gc = u(L, N, H), u(L, N, H), u(2, N, H), u(2, N, H)
    for k, t in (("out1", out1), ("out2", out2), ("h_n", h2), ("c_n", c2), ("gout1", g1), ("gout2", g2),
                 ("gh_n", gh), ("gc_n", gc)):
        save(name, k, t)
    loss = (out1 * g1).sum() + (out2 * g2).sum() + (h2 * gh).sum() + (c2 * gc).sum()
    params = dict(m.named_parameters())
    grads = torch.autograd.grad(loss, [x, h0, c0] + list(params.values()))
    for k, g in zip(["x", "h0", "c0"], grads[:3]):
        save(name, f"grad/{k}", g)
    for k, g in zip(params, grads[3:]):
        save(name, f"grad/param/{k}", g)


torch.manual_seed(15)
for case_name, config in CASES.items():
    run_case(case_name, *config)
tbptt()
np.savez(out_path, **entries)
print(f"wrote {len(entries)} arrays to {out_path}")
