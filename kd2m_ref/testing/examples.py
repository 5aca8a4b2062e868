"""The unit every strategy produces and every comparison consumes: one call's arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Example:
    """Positional ``args`` (point clouds or logits) and keyword ``kwargs`` (labels, weights, params)
    of one metric call, as float64 / int64 NumPy arrays and Python scalars; ``meta`` holds how the
    strategy drew them (not passed to the call).

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import wasserstein
    >>> from kd2m_ref.testing import Example
    >>> xs, xt = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    >>> ex = Example((xs, xt), {"p": 2.0})
    >>> ex.call(wasserstein), ex.rounded("float16").args[0].dtype
    (1.0, dtype('float64'))
    >>> import torch
    >>> ex.to_torch(torch.float32).args[0].dtype
    torch.float32
    """

    args: tuple
    kwargs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def _map(self, fn):
        conv = lambda v: fn(v) if isinstance(v, np.ndarray) else v  # noqa: E731
        return Example(tuple(conv(v) for v in self.args), {k: conv(v) for k, v in self.kwargs.items()}, self.meta)

    def rounded(self, dtype) -> "Example":
        """Float arrays rounded to ``dtype`` and back to float64: what a ``dtype`` computation received."""
        np_dtype = np.dtype(str(dtype).replace("torch.", ""))
        return self._map(lambda v: v.astype(np_dtype).astype(np.float64) if v.dtype.kind == "f" else v)

    def to_torch(self, dtype, device="cpu", requires_grad: bool = False) -> "Example":
        """Float arrays as tensors of ``dtype`` on ``device`` (positional ones optionally requiring grad),
        integer arrays as int64 tensors."""
        import torch

        def conv(v, grad):
            if v.dtype.kind == "f":
                return torch.tensor(v, dtype=dtype, device=device, requires_grad=grad)
            return torch.tensor(v, dtype=torch.int64, device=device)

        return Example(tuple(conv(v, requires_grad) if isinstance(v, np.ndarray) else v for v in self.args),
                       {k: conv(v, False) if isinstance(v, np.ndarray) else v for k, v in self.kwargs.items()},
                       self.meta)

    def call(self, fn):
        return fn(*self.args, **self.kwargs)

    def __repr__(self) -> str:
        with np.printoptions(precision=17, threshold=200):
            parts = [repr(v) for v in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"Example({', '.join(parts)})"
