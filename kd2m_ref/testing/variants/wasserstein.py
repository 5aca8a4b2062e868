"""Variants of the exact optimal-transport metrics: Wasserstein, class-conditional, joint and sliced."""

from __future__ import annotations

import numpy as np

from ..._conventions import class_blocks
from ...reference.wasserstein import (_ot_cost, cost_matrix, label_cost_matrix, sliced_projections, wasserstein_1d,
                                      wasserstein as wasserstein_reference)
from ._common import (NotApplicable, _ref, as_metric, class_weight_variants, ignores_weights, not_applicable, paired,
                      param, param_or, root, scaled, swapped_weights, with_params)
from .sinkhorn import sinkhorn_instead

_EPSILONS = (0.01, 0.05, 0.1, 0.5, 1.0)


def _cost_p(key: str, p_used: float, desc: str):
    """The metric with the ground-cost exponent ``p_used`` (not applicable when p already is)."""
    def fn(ex):
        if float(param_or(ex, "p", 2.0)) == p_used:
            raise NotApplicable
        return _ref(key, ex, p=p_used)
    return desc, fn


wasserstein = {
    "p_th_root": ("W_p, the p-th root (not squared for p = 2) instead of W_p^p", root("wasserstein")),
    "euclidean_cost": _cost_p("wasserstein", 1.0, "cost ||x - y|| (Euclidean, p = 1) instead of ||x - y||^p"),
    "squared_cost": _cost_p("wasserstein", 2.0, "cost ||x - y||^2 whatever p"),
    "half_squared_cost": ("cost ||x - y||^2 / 2 (GeomLoss's p = 2 convention)",
                          lambda ex: 0.5 * _ref("wasserstein", ex) if float(param_or(ex, "p", 2.0)) == 2
                          else not_applicable()),
    "ignores_weights": ("sample weights a, b ignored (uniform)", ignores_weights("wasserstein")),
    "swapped_weights": ("weights a and b swapped", swapped_weights("wasserstein")),
    "paired_cost": ("mean_i ||x_i - y_i||^p: the paired (MSE-like) cost, no transport", paired("wasserstein")),
    **{f"sinkhorn(eps={e})": (f"entropic OT (Sinkhorn dual value) with epsilon = {e}, passed off as exact OT",
                              sinkhorn_instead(e, False)) for e in _EPSILONS},
    **{f"sinkhorn_plan_cost(eps={e})": ((f"<plan, C> of the entropic plan with epsilon = {e} (POT's sinkhorn2), "
                                         "passed off as exact OT"), sinkhorn_instead(e, True)) for e in _EPSILONS},
}


def _per_class_root(ex):
    """sum_c w_c W_p(class c): the p-th root taken per class."""
    p = float(param_or(ex, "p", 2.0))
    if p == 1:
        raise NotApplicable
    xs, xt = ex.args
    a, b = ex.kwargs.get("a"), ex.kwargs.get("b")
    total = 0.0
    for blk in class_blocks(ex.kwargs["ys"], ex.kwargs.get("yt"), len(xs), len(xt),
                            weights=param("class_conditional_wasserstein", ex, "weights"), a=a):
        w = wasserstein_reference(xs[blk.index_s], xt[blk.index_t], p=p,
                                  a=None if a is None else a[blk.index_s], b=None if b is None else b[blk.index_t])
        total += blk.weight * max(w, 0.0) ** (1 / p)
    return total


class_conditional_wasserstein = {
    **class_weight_variants("class_conditional_wasserstein"),
    "marginal": ("labels ignored: the marginal W_p^p of the whole batch", as_metric("wasserstein")),
    "p_th_root": ("sum_c w_c W_p (p-th root per class) instead of W_p^p", _per_class_root),
    "euclidean_cost": _cost_p("class_conditional_wasserstein", 1.0,
                              "cost ||x - y|| (Euclidean) instead of ||x - y||^p"),
    "ignores_weights": ("sample weights a, b ignored (uniform)", ignores_weights("class_conditional_wasserstein")),
    "paired_cost": ("per class mean_i ||x_i - y_i||^p: the paired cost, no transport",
                    paired("class_conditional_wasserstein")),
}


def _joint_custom(feature: str, normalise: bool = False):
    """Joint OT with the feature cost between ``feature`` = "student_student" (the paper's code) or
    "student_teacher", optionally divided by its max."""
    def fn(ex):
        xs, xt = ex.args
        if feature == "student_student" and xs.shape != xt.shape:
            raise NotApplicable
        p = float(param_or(ex, "p", 2.0))
        c = cost_matrix(xs, xs if feature == "student_student" else xt, p)
        if normalise:
            c = c / c.max() if c.max() > 0 else c
        ys = np.asarray(ex.kwargs["ys"])
        yt = ex.kwargs.get("yt")
        lab = label_cost_matrix(ys, ys if yt is None else np.asarray(yt),
                                param("joint_wasserstein", ex, "label_cost"), ex.kwargs.get("num_classes"))
        a, b = ex.kwargs.get("a"), ex.kwargs.get("b")
        return _ot_cost(c + float(param("joint_wasserstein", ex, "beta")) * lab,
                        None if a is None else np.asarray(a) / np.sum(a),
                        None if b is None else np.asarray(b) / np.sum(b))
    return fn


def _half_onehot(ex):
    """The joint cost with the one-hot label cost 1[y != y'] (beta halved)."""
    if param("joint_wasserstein", ex, "label_cost") != "onehot" or param("joint_wasserstein", ex, "beta") == 0:
        raise NotApplicable
    return _ref("joint_wasserstein", ex, beta=0.5 * float(param("joint_wasserstein", ex, "beta")))


def _label_cost_choice(choice: str):
    def fn(ex):
        if param("joint_wasserstein", ex, "label_cost") == choice or param("joint_wasserstein", ex, "beta") == 0:
            raise NotApplicable
        return _ref("joint_wasserstein", ex, label_cost=choice)
    return fn


_LABEL_COST_DESC = {"onehot": " (2·1[y != y'])", "soft": " (||p - q||^2)", "cross_entropy": " (-sum y log y')"}

joint_wasserstein = {
    **{f"label_cost={c}": (f"label cost '{c}'" + d, _label_cost_choice(c)) for c, d in _LABEL_COST_DESC.items()},
    "onehot_without_factor_2": ("label cost 1[y != y'] instead of ||e_y - e_y'||^2 = 2·1[y != y']", _half_onehot),
    "beta=1": ("beta ignored (fixed at 1)", with_params("joint_wasserstein", beta=1.0)),
    "marginal": ("labels ignored: the marginal W_p^p (beta = 0)", as_metric("wasserstein")),
    "student_student_cost": ("feature cost between student and student (the paper's code), not student and teacher",
                             _joint_custom("student_student")),
    "student_student_cost_max_normalised": ("feature cost student-student divided by its max (the paper's code)",
                                            _joint_custom("student_student", normalise=True)),
    "max_normalised_cost": ("feature cost divided by its max", _joint_custom("student_teacher", normalise=True)),
    "p_th_root": ("the p-th root of the joint cost", root("joint_wasserstein")),
    "euclidean_cost": _cost_p("joint_wasserstein", 1.0, "feature cost ||x - y|| (Euclidean) instead of ||x - y||^p"),
    "ignores_weights": ("sample weights a, b ignored (uniform)", ignores_weights("joint_wasserstein")),
}


def _sliced_per_slice_root(ex):
    """mean_theta W_p(<theta, x>, <theta, y>): the p-th root taken per direction."""
    xs, xt = ex.args
    p = float(param_or(ex, "p", 2.0))
    if p == 1:
        raise NotApplicable
    theta = sliced_projections(xs.shape[1], int(param("sliced_wasserstein", ex, "n_projections")),
                               param("sliced_wasserstein", ex, "seed"))
    a, b = ex.kwargs.get("a"), ex.kwargs.get("b")
    return float(np.mean([wasserstein_1d(xs @ t, xt @ t, a=a, b=b, p=p) ** (1 / p) for t in theta]))


sliced_wasserstein = {
    "p_th_root": ("SW_p, the p-th root of the mean, instead of SW_p^p", root("sliced_wasserstein")),
    "per_slice_root": ("mean over directions of W_p (root per slice)", _sliced_per_slice_root),
    "sum_over_projections": ("sum over the directions instead of the mean", scaled(
        "sliced_wasserstein", lambda ex: int(param("sliced_wasserstein", ex, "n_projections")))),
    "euclidean_cost": _cost_p("sliced_wasserstein", 1.0, "cost |u - v| (p = 1) instead of |u - v|^p"),
    "ignores_weights": ("sample weights a, b ignored (uniform)", ignores_weights("sliced_wasserstein")),
}
