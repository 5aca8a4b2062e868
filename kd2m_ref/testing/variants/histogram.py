"""Variants of OT between class histograms: the conventions of Wasserstein logit distillation code.

The value (OT_eps, plan cost, dual) and the number of Sinkhorn iterations are the ones that matter:
training code runs a fixed, small number of iterations and returns the plan's cost, which is neither
converged nor OT_eps. Every (value, n_iter) pair is a variant, so the checker can name what a function
computes ("value=plan_cost, n_iter=10"); converged ones are solved to a 1e-12 marginal error.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..._conventions import SINKHORN_VALUES, SinkhornNotConverged
from ._common import NotApplicable, _ref, param, scaled, with_params

KEY = "histogram_ot"
ITERATIONS = (1, 2, 3, 5, 10, 20, 30, 50, 100)  #: fixed iteration counts tried
TOL = 1e-12  #: marginal error of the converged variants


def _entropic(ex, value: str, n_iter):
    """The reference at ``value`` and ``n_iter`` (not applicable for exact OT, or at the example's own
    setting, or when a converged solve does not converge)."""
    if not float(param(KEY, ex, "epsilon")) > 0:
        raise NotApplicable
    if param(KEY, ex, "value") == value and param(KEY, ex, "n_iter") == n_iter:
        raise NotApplicable
    with warnings.catch_warnings():
        warnings.simplefilter("error", SinkhornNotConverged)
        try:
            return _ref(KEY, ex, value=value, n_iter=n_iter, max_iter=50_000, tol=TOL)
        except SinkhornNotConverged:
            raise NotApplicable from None


def _describe(value, n_iter) -> str:
    what = {"ot_eps": "OT_eps (<P, C> + eps KL(P || a b^T))", "plan_cost": "the plan's cost <P, C>",
            "dual": "the dual objective"}[value]
    return f"{what}, converged" if n_iter is None else f"{what} after {n_iter} Sinkhorn iteration(s) from u = 1"


def _swapped(ex):
    """Student and teacher exchanged (the teacher's histogram as the rows of the plan), with the cost
    transposed: the same number for exact and converged OT (the plan transposes), a different one
    after a fixed number of iterations (the last update makes the other side's marginals exact)."""
    us, ut = ex.args
    if np.array_equal(us, ut) or param(KEY, ex, "n_iter") is None:
        raise NotApplicable
    cost = ex.kwargs.get("cost")
    return _ref(KEY, ex, args=(ut, us), cost=None if cost is None else np.swapaxes(np.asarray(cost), -1, -2))


def _transposed_cost(ex):
    cost = ex.kwargs.get("cost")
    if cost is None or np.array_equal(cost, np.swapaxes(cost, -1, -2)):
        raise NotApplicable
    return _ref(KEY, ex, cost=np.swapaxes(np.asarray(cost), -1, -2))


def _temperature_ignored(ex):
    if param(KEY, ex, "inputs") != "logits":
        raise NotApplicable
    return with_params(KEY, temperature=1.0)(ex)


def _t(ex) -> float:
    return float(param(KEY, ex, "temperature")) if param(KEY, ex, "inputs") == "logits" else 1.0


histogram_ot = {
    **{f"value={v}, n_iter={n}": (_describe(v, n), (lambda v, n: lambda ex: _entropic(ex, v, n))(v, n))
       for v in SINKHORN_VALUES for n in (None, *ITERATIONS)},
    "exact": ("exact OT (epsilon = 0) instead of entropic", with_params(KEY, epsilon=0.0, value="ot_eps", n_iter=None)),
    "swapped": ("student and teacher exchanged (teacher's classes as the rows of the plan)", _swapped),
    "transposed_cost": ("the cost matrix transposed", _transposed_cost),
    "temperature_ignored": ("softmax at T = 1", _temperature_ignored),
    "times_T2": ("times T^2 (as Hinton's KD)", scaled(KEY, lambda ex: _t(ex) ** 2)),
    "batch_sum": ("sum over the batch instead of the mean", scaled(KEY, lambda ex: len(ex.args[0]))),
}
