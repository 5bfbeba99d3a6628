"""What a group file of PyTorch reference cases is made of (see scripts/torch-fixtures).

A group file defines CASES, a list of Case. A case has the name of an op case of
tests/op_cases.cpp and computes exactly what that op case's lambda computes, in torch:
  Case("softplus", [(3, 4)], lambda x: F.softplus(x[0]))
The inputs are drawn as the op case list draws them (domain "any": uniform in [-2, 2];
"positive": [0.3, 2]; "away_from_zero": +-[0.3, 2]) from a generator seeded by the name, or given
as explicit float64 arrays (edge values): Case("logsumexp_inf", inputs=[np.array(...)], ...).
Constants that are not differentiable (indices, masks, axes) are written literally here and in
the op case's lambda, the same way.
"""
import zlib
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

import numpy as np


@dataclass
class Case:
    name: str
    shapes: Sequence[tuple] = ()
    fn: Callable = None
    domain: str = "any"
    inputs: Optional[List[np.ndarray]] = None  # explicit inputs instead of drawn ones

    def draw(self) -> List[np.ndarray]:
        if self.inputs is not None:
            return [np.asarray(a, dtype=np.float64) for a in self.inputs]
        rng = np.random.default_rng(zlib.crc32(self.name.encode()))
        xs = []
        for shape in self.shapes:
            if self.domain == "any":
                a = rng.uniform(-2.0, 2.0, shape)
            elif self.domain == "positive":
                a = rng.uniform(0.3, 2.0, shape)
            elif self.domain == "away_from_zero":
                a = rng.uniform(0.3, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
            else:
                raise ValueError(f"{self.name}: unknown domain {self.domain!r}")
            xs.append(np.asarray(a, dtype=np.float64))
        return xs
