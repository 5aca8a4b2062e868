"""Properties of OT between class histograms (``histogram_ot``) and of Sinkhorn's ``value=`` choice, on the
float64 reference."""

import warnings

import mpmath as mp
import numpy as np
import ot
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import softmax

from kd2m_ref import oracle as O
from kd2m_ref import reference as R
from kd2m_ref.reference import histogram_ot
from kd2m_ref.reference.wasserstein import cost_matrix
from kd2m_ref.testing.strategies import histogram_ot_example, sinkhorn_example
from kd2m_ref.testing.tolerance import histogram_ot_tolerance, sinkhorn_tolerance


def _atol(ex) -> float:
    rtol, atol = histogram_ot_tolerance(ex, "float64")
    return atol + rtol


def _probabilities(ex):
    us, ut = ex.args
    t = ex.kwargs.get("temperature", 1.0) if ex.kwargs.get("inputs", "logits") == "logits" else None
    if t is None:
        return us / us.sum(1, keepdims=True), ut / ut.sum(1, keepdims=True)
    return softmax(us / t, axis=1), softmax(ut / t, axis=1)


def _rows(ex, fn):
    """``fn(p_row, q_row, cost)`` averaged over the rows of ``ex``."""
    ps, pt = _probabilities(ex)
    cost = np.broadcast_to(ex.kwargs["cost"], (len(ps),) + ex.kwargs["cost"].shape[-2:])
    return float(np.mean([fn(p, q, c) for p, q, c in zip(ps, pt, cost)]))


@settings(max_examples=25, deadline=None)
@given(histogram_ot_example(small=True))
def test_reference_matches_oracle(ex):
    """covers("histogram_ot", "oracle"): entropic values (converged and after L iterations) against the
    50-digit kernel-form Sinkhorn."""
    ref = ex.call(R.histogram_ot)
    with mp.workdps(50):
        exact = ex.call(O.histogram_ot)
    assert abs(mp.mpf(ref) - exact) <= _atol(ex), (ref, exact)


@given(histogram_ot_example())
def test_exact_and_plan_cost_match_pot(ex):
    """covers("histogram_ot", "pot"): exact OT is POT's ot.emd2, the converged plan cost its ot.sinkhorn2
    (where POT converges in its budget: epsilon >= 0.2 max C)."""
    eps = ex.kwargs.get("epsilon", 0.0)
    if eps > 0:
        if eps < 0.2 * max(float(np.max(ex.kwargs["cost"])), 1e-2):
            return
        ex.kwargs.update(value="plan_cost", n_iter=None, tol=1e-12)
        want = _rows(ex, lambda p, q, c: ot.sinkhorn2(p, q, c, eps, method="sinkhorn_log", numItermax=200_000,
                                                       stopThr=1e-14))
    else:
        want = _rows(ex, lambda p, q, c: ot.emd2(p, q, c))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = ex.call(histogram_ot)
    assert abs(got - want) <= _atol(ex), (got, want)


@given(histogram_ot_example())
def test_zero_one_cost_is_total_variation(ex):
    """covers("histogram_ot", "total_variation"): with C = 1[k != l], exact OT is 1/2 ||p - q||_1."""
    k = ex.args[0].shape[1]
    ex.kwargs.update(cost=1.0 - np.eye(k), epsilon=0.0)
    for name in ("value", "n_iter"):
        ex.kwargs.pop(name, None)
    want = _rows(ex, lambda p, q, c: 0.5 * np.abs(p - q).sum())
    assert abs(ex.call(histogram_ot) - want) <= _atol(ex)


@given(histogram_ot_example())
def test_exact_is_zero_at_equality(ex):
    """covers("histogram_ot", "zero_at_equality"): student = teacher with a zero-diagonal cost gives 0."""
    ex.kwargs.update(epsilon=0.0)
    for name in ("value", "n_iter"):
        ex.kwargs.pop(name, None)
    us = ex.args[0]
    assert abs(histogram_ot(us, us.copy(), **ex.kwargs)) <= _atol(ex)


@given(histogram_ot_example())
def test_value_is_the_mean_over_rows(ex):
    """covers("histogram_ot", "batch_mean"): the batch's value is the mean of its rows' values."""
    us, ut = ex.args
    cost = ex.kwargs["cost"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = ex.call(histogram_ot)
        rows = [histogram_ot(us[i:i + 1], ut[i:i + 1], **{**ex.kwargs, "cost": cost}) for i in range(len(us))]
    assert abs(whole - np.mean(rows)) <= _atol(ex)


@given(histogram_ot_example(), st.sampled_from([0.5, 2.0, 4.0]))
def test_temperature_is_softmax_of_scaled_logits(ex, t):
    """covers("histogram_ot", "temperature"): logits at T equal the probabilities softmax(u / T)."""
    if ex.kwargs["inputs"] != "logits":
        return
    ex.kwargs["temperature"] = t
    us, ut = ex.args
    probs = {**ex.kwargs, "inputs": "probabilities", "temperature": 1.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert abs(ex.call(histogram_ot) - histogram_ot(softmax(us / t, 1), softmax(ut / t, 1), **probs)) <= _atol(ex)


@given(histogram_ot_example())
def test_converged_values_are_ordered(ex):
    """covers("histogram_ot", "values_ordered") covers("histogram_ot", "ge_exact"): converged, exact OT <=
    plan cost <= OT_eps = dual (the entropy term is non-negative, the plan feasible)."""
    eps = ex.kwargs.get("epsilon", 0.0)
    if not eps > 0:
        return
    base = {**ex.kwargs, "n_iter": None, "tol": 1e-12}
    with warnings.catch_warnings():
        warnings.simplefilter("error", R.SinkhornNotConverged)
        try:
            values = {v: histogram_ot(*ex.args, **{**base, "value": v}) for v in ("ot_eps", "plan_cost", "dual")}
        except R.SinkhornNotConverged:  # nearly equal histograms at small eps: the budget may not suffice
            return
    exact = histogram_ot(*ex.args, **{**base, "epsilon": 0.0, "value": "ot_eps", "n_iter": None})
    tol = _atol(ex) + 1e-9 * max(float(np.max(ex.kwargs["cost"])), 1e-2)
    assert exact <= values["plan_cost"] + tol
    assert values["plan_cost"] <= values["ot_eps"] + tol
    assert abs(values["ot_eps"] - values["dual"]) <= tol


@given(histogram_ot_example())
def test_fixed_iterations_converge(ex):
    """covers("histogram_ot", "fixed_iterations_converge"): enough fixed iterations reach the converged value
    (epsilon >= 0.2 max C contracts fast)."""
    eps = ex.kwargs.get("epsilon", 0.0)
    cmax = max(float(np.max(ex.kwargs["cost"])), 1e-2)
    if not eps >= 0.2 * cmax:
        return
    fixed = histogram_ot(*ex.args, **{**ex.kwargs, "n_iter": 2000})
    converged = histogram_ot(*ex.args, **{**ex.kwargs, "n_iter": None, "tol": 1e-13})
    assert abs(fixed - converged) <= _atol(ex) + 1e-10 * cmax


def test_fixed_iterations_follow_the_kernel_recursion():
    """The fixed-iteration mode is the kernel-form recursion from u = 1, written out for L = 1."""
    rng = np.random.default_rng(0)
    p, q = softmax(rng.normal(size=(1, 4)), 1), softmax(rng.normal(size=(1, 4)), 1)
    c = np.abs(rng.normal(size=(4, 4)))
    k = np.exp(-c / 0.3)
    v = q[0] / (k.T @ np.ones(4))
    u = p[0] / (k @ v)
    plan = u[:, None] * k * v[None, :]
    got = histogram_ot(p, q, cost=c, inputs="probabilities", epsilon=0.3, value="plan_cost", n_iter=1)
    assert got == pytest.approx(float(np.sum(plan * c)), rel=1e-13)


@settings(max_examples=50)
@given(sinkhorn_example())
def test_sinkhorn_values_are_ordered(ex):
    """covers("sinkhorn", "values_ordered"): converged, W_p^p <= plan cost <= OT_eps = dual."""
    ex.kwargs.update(tol=1e-11)
    values = {v: R.sinkhorn(*ex.args, **{**ex.kwargs, "value": v}) for v in ("ot_eps", "plan_cost", "dual")}
    exact = R.wasserstein(*ex.args, p=ex.kwargs["p"], a=ex.kwargs.get("a"), b=ex.kwargs.get("b"))
    rtol, atol = sinkhorn_tolerance(ex, "float64")
    tol = atol + rtol * abs(values["ot_eps"])
    assert exact <= values["plan_cost"] + tol
    assert values["plan_cost"] <= values["ot_eps"] + tol
    assert abs(values["ot_eps"] - values["dual"]) <= tol


@settings(max_examples=50)
@given(sinkhorn_example())
def test_sinkhorn_plan_cost_matches_pot(ex):
    """covers("sinkhorn", "plan_cost_pot"): value="plan_cost" is POT's ot.sinkhorn2."""
    xs, xt = ex.args
    a, b = ex.kwargs.get("a"), ex.kwargs.get("b")
    wa = np.full(len(xs), 1 / len(xs)) if a is None else a / a.sum()
    wb = np.full(len(xt), 1 / len(xt)) if b is None else b / b.sum()
    c = cost_matrix(xs, xt, ex.kwargs["p"])
    want, log = ot.sinkhorn2(wa, wb, c, ex.kwargs["epsilon"], method="sinkhorn_log", numItermax=20_000, stopThr=1e-13,
                             log=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", R.SinkhornNotConverged)
        try:
            got = R.sinkhorn(*ex.args, **{**ex.kwargs, "value": "plan_cost", "tol": 1e-12})
        except R.SinkhornNotConverged:  # a nearly permutation plan: the marginals creep (both solvers)
            return
    if log["err"][-1] > 1e-12:
        return
    rtol, atol = sinkhorn_tolerance(ex, "float64")
    assert abs(got - float(want)) <= atol + rtol * abs(got) + 1e-9 * float(c.max()), (got, want)
