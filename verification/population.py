r"""Sample-based terms of the chain with confidence bounds, shared by experiments B1-B4 (THEORY.md §4.2).

Inputs are *paired* samples: rows ``zs[i], zt[i]`` are the student and teacher features of the
same input :math:`x_i\sim P`. Every bound term gets an estimate and, where a valid one is known,
a lower and an upper confidence bound at level :math:`1-\alpha` (pointwise).
"""

from __future__ import annotations

import math

import numpy as np

from kd2m_ref.reference import mmd as mmd_squared

from .exact import SQRT2, class_conditional_w1, euclidean_distance, joint_w1, kernel_distance, w1
from .stats import Interval, hoeffding, mean_interval, mmd_lower, mmd_upper, w1_lower, w1_upper


def _halves(n: int, rng: np.random.Generator):
    perm = rng.permutation(n)
    return perm[: n // 2], perm[n // 2:]


def kernel_terms(zs, zt, sigma: float, alpha: float, rng: np.random.Generator) -> dict[str, Interval]:
    r"""MMD (V-statistic of ``kd2m_ref.reference.mmd``, square-rooted; CI of :func:`stats.mmd_lower`),
    :math:`W_1^{d_k}` (plug-in; UCB by McDiarmid, LCB by sample splitting), :math:`\mathbb E\,d_k`
    (Hoeffding, values in :math:`[0,\sqrt2]`) and the sample max of :math:`d_k` (a lower estimate of the sup)."""
    n = len(zs)
    mmd_hat = math.sqrt(max(mmd_squared(zs, zt, kernel="gaussian", bandwidth=sigma), 0.0))
    plug = w1(kernel_distance(zs, zt, sigma))
    a, b = _halves(n, rng)
    lcb = w1_lower(zs[a], zt[a], zs[b], zt[b], lambda x, y: kernel_distance(x, y, sigma), SQRT2, alpha)
    pair = np.sqrt(np.maximum(-2.0 * np.expm1(-np.sum((zs - zt) ** 2, 1) / (2 * sigma**2)), 0.0))
    return {
        "mmd": Interval(mmd_hat, max(mmd_lower(mmd_hat, n, alpha), 0.0), mmd_upper(mmd_hat, n, alpha)),
        "w1_dk": Interval(plug, max(lcb.lower, 0.0), w1_upper(plug, SQRT2, n, alpha)),
        "mean_dk": hoeffding(pair, SQRT2, alpha),
        "max_dk": Interval(float(pair.max()), float(pair.max()), SQRT2),
    }


def euclidean_terms(zs, zt, y, alpha: float, diameter: float | None = None) -> dict[str, Interval]:
    r"""Euclidean :math:`W_1` of the marginals, :math:`\sum_c\hat p_cW_1(\text{class }c)` and
    :math:`\mathbb E\|\phi_S-\phi_T\|`. With a known support ``diameter`` D: the UCB of :math:`W_1`
    (McDiarmid) and a Hoeffding CI of the coupling term; otherwise estimates with a CLT interval
    for the coupling term and no bound for the OT terms (lower = upper = plug-in is *not* claimed:
    they are set to NaN)."""
    n = len(zs)
    marg = w1(euclidean_distance(zs, zt))
    cond = class_conditional_w1(zs, zt, y, euclidean_distance)
    norms = np.linalg.norm(zs - zt, axis=1)
    nan = float("nan")
    return {
        "w1": Interval(marg, nan, w1_upper(marg, diameter, n, alpha) if diameter else nan),
        "cond": Interval(cond, nan, nan),
        "mean_eu": mean_interval(norms, diameter, alpha),
    }


def gap_interval(values, value_range: float | None, alpha: float) -> Interval:
    """CI of the mean risk gap from paired differences (Hoeffding / empirical Bernstein; CLT if unbounded)."""
    return mean_interval(values, value_range, alpha)


def joint_term(zs, zt, y, lipschitz: float, bound: float) -> float:
    r"""Plug-in joint :math:`W_1` for the cost :math:`L\|z-z'\|+B\,1[y\ne y']` (THEORY.md §3.3)."""
    return joint_w1(zs, zt, y, lambda u, v: lipschitz * euclidean_distance(u, v), bound)
