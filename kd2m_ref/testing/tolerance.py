"""Tolerance models: how far a computation in a given dtype may be from the float64 reference.

Each model returns ``(rtol, atol)`` for ``|value - reference| <= atol + rtol * |reference|``, with the
reference evaluated on the inputs *as rounded to that dtype* (so input rounding is not counted). The
bounds follow the conditioning of the input instead of one loose atol for everything:

* exact OT with costs from explicit differences: each cost entry has relative error <= (p(d+2)/2+1)u,
  so the optimal value has the same relative error, plus nm·u for the summation: a pure ``rtol``.
* sliced OT: projections ``x @ theta`` carry an absolute error ~ d·u·max|x|, which the p-th power
  propagates with the factor p·D^(p-1), D the largest projected gap: an ``atol``.
* Sinkhorn: the stopping rule bounds the marginal error by tol (raised to 32·n·eps in low precision);
  the value then moves by at most about tol·max C.
"""

from __future__ import annotations

import math

import numpy as np

# Safety factor over the first-order error bounds above; bounds are worst-case, the factor
# covers constants dropped in the first-order analysis (not a fudge of the scaling).
SAFETY = 8.0


def unit_roundoff(dtype) -> float:
    return float(np.finfo(np.dtype(str(dtype).replace("torch.", ""))).eps) / 2


def _sizes(example):
    xs, xt = example.args
    p = float(example.kwargs.get("p", 2.0))
    return xs, xt, p, xs.shape[0], xt.shape[0], xs.shape[1]


def _max_cost(example) -> float:
    xs, xt, p, *_ = _sizes(example)
    sq = np.sum((xs[:, None, :] - xt[None, :, :]) ** 2, -1)
    return float(np.max(sq ** (p / 2))) + 2.0 * float(example.kwargs.get("beta", 0.0)) * (
        1.0 if example.kwargs.get("label_cost") != "cross_entropy" else 50.0)


def ot_tolerance(example, dtype) -> tuple[float, float]:
    """Exact and sliced OT; see the module docstring."""
    xs, xt, p, n, m, d = _sizes(example)
    u = unit_roundoff(dtype)
    rtol = SAFETY * u * (p * (d + 2) + n * m + 2)
    atol = SAFETY * u * _max_cost(example)
    if "n_projections" in example.kwargs:
        radius = max(np.abs(xs).max(), np.abs(xt).max())
        gap = 2 * math.sqrt(d) * radius
        atol += SAFETY * p * (d + 2) * u * math.sqrt(d) * radius * gap ** (p - 1)
    return rtol, atol


def sinkhorn_tolerance(example, dtype) -> tuple[float, float]:
    """Sinkhorn: convergence-limited; see the module docstring."""
    xs, xt, p, n, m, d = _sizes(example)
    u = unit_roundoff(dtype)
    tol = max(float(example.kwargs.get("tol", 1e-9)), 64 * max(n, m) * u)
    cmax = _max_cost(example) + float(example.kwargs.get("epsilon", 0.1)) * math.log(n * m + 1)
    return SAFETY * u * (p * (d + 2) + n * m + 2), SAFETY * (tol + u) * cmax * 4
