"""Runs tour_nn, which trains XOR and saves an .npz checkpoint, and checks that numpy reads it:
names, shapes and dtypes as xgrad wrote them. Usage: check_npz.py TOUR_NN OUT.npz"""
import subprocess
import sys

import numpy as np

exe, path = sys.argv[1], sys.argv[2]
out = subprocess.run([exe, path], check=True, capture_output=True, text=True).stdout
with np.load(path) as npz:
    shapes = {name: npz[name].shape for name in npz.files}
    dtypes = {npz[name].dtype for name in npz.files}
expected = {"0.weight": (2, 2), "0.bias": (2,), "2.weight": (2, 1), "2.bias": (1,)}
for name, shape in expected.items():
    assert shapes.get(name) == shape, f"{path}: {name} has shape {shapes.get(name)}, expected {shape}"
assert any(n.startswith("optimizer/") for n in shapes), f"{path}: no optimizer state in {sorted(shapes)}"
assert dtypes == {np.dtype("float32")}, f"{path}: dtypes {dtypes}"
with np.load(path) as npz:
    w, b = npz["0.weight"], npz["0.bias"]
    assert np.all(np.isfinite(w)) and np.abs(w).max() > 0.5, f"{path}: implausible trained weights {w}"
print(f"numpy read {len(shapes)} arrays from {path}: ok")
