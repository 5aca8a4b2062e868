r"""Theorem 3.1 on trained networks (THEORY.md §4.3): risks, coupling and distribution terms, bounds.

Inputs are held-out arrays: teacher and student features :math:`z^T_i, z^S_i`, logits, labels, and
the teacher head :math:`u=Wz+b`. The *hybrid* network is the teacher head on student features.
Checks that must hold on the empirical measure they are computed on (they are theorems for any
:math:`P`; on held-out data they are sanity checks and tightness measurements):

* ``cond``: :math:`|\mathrm{CE}(h_T\phi_S)-\mathrm{CE}(h_T\phi_T)|\le L_{CE}\sum_c\hat p_cW_1^c\le
  L_{CE}\,\mathbb E\|\phi_S-\phi_T\|`, :math:`L_{CE}=\sqrt2\|W_T\|_{op}` (§3.3-3.4), on each subsample;
* ``margin``: :math:`\mathrm{Err}(h_T\phi_S)\le\hat P(m_T\le\gamma)+\tfrac{L_m}{\gamma}\mathbb E\|\Delta\phi\|`
  for every :math:`\gamma` of a grid, :math:`L_m=\max_{c\ne c'}\|w_c-w_{c'}\|`;
* ``head``: :math:`|\mathrm{CE}(h_S\phi_S)-\mathrm{CE}(h_T\phi_S)|\le\sqrt2\,\mathbb E\|\Pi(u_S-u_H)\|`;
* ``student``: the actual student-teacher CE gap :math:`\le` head term + :math:`L_{CE}\mathbb E\|\Delta\phi\|`.

The **marginal form** :math:`\text{gap}\le L_{CE}W_1(\text{marginals})` needs assumption (A*) of
§3.3 and may fail: it is reported as data (``marginal_form``), never asserted.

Exact OT: :func:`verification.exact.w1` and :func:`verification.exact.class_conditional_w1` (the
reference ``ot_plan``: Hungarian for equal uniform clouds), on Euclidean cost matrices from
``scipy.spatial.distance.cdist`` (no :math:`n\times m\times d` difference array, which the
reference's ``cost_matrix`` builds and which would need gigabytes at d = 512).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.distance import cdist, pdist

from verification.exact import SQRT2, LinearHead, class_conditional_w1, w1

#: Relative and absolute slack of the must-hold checks (float64 sums and LP optimality).
RTOL, ATOL = 1e-9, 1e-9


def euclidean(x, y) -> np.ndarray:
    """Matrix of Euclidean distances ``||x_i - y_j||``."""
    return cdist(np.asarray(x, np.float64), np.asarray(y, np.float64))


def kernel_cost(x, y, sigma: float) -> np.ndarray:
    r"""Gaussian-kernel metric :math:`d_k=\sqrt{-2\,\mathrm{expm1}(-r^2/2\sigma^2)}` (as
    :func:`verification.exact.kernel_distance`, from ``cdist``)."""
    sq = cdist(np.asarray(x, np.float64), np.asarray(y, np.float64), "sqeuclidean")
    return np.sqrt(np.maximum(-2.0 * np.expm1(-sq / (2.0 * sigma**2)), 0.0))


def mmd_fixed(xs, xt, sigma: float) -> float:
    r""":math:`\mathrm{MMD}_k` (not squared), Gaussian kernel of bandwidth ``sigma``, V-statistic: the
    value of ``kd2m_ref.reference.mmd(xs, xt, bandwidth=sigma)`` square-rooted, from ``cdist``
    (tested against the reference on small inputs)."""
    k = [np.exp(-cdist(a, b, "sqeuclidean") / (2.0 * sigma**2)) for a, b in ((xs, xs), (xt, xt), (xs, xt))]
    value = k[0].mean() + k[1].mean() - 2.0 * k[2].mean()
    return math.sqrt(max(value, 0.0))


def median_bandwidth(z, max_points: int = 1000) -> float:
    """Median heuristic: the median pairwise distance of (the first ``max_points`` rows of) ``z``."""
    return float(np.median(pdist(np.asarray(z, np.float64)[:max_points])))


def margin(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    r""":math:`m(u,y)=u_y-\max_{c\ne y}u_c` per row."""
    idx = np.arange(len(y))
    own = logits[idx, y]
    other = logits.copy()
    other[idx, y] = -np.inf
    return own - other.max(axis=1)


def centred(u: np.ndarray) -> np.ndarray:
    r""":math:`\Pi u=u-\bar u\mathbf 1` per row."""
    return u - u.mean(axis=1, keepdims=True)


def _check(lhs: float, rhs: float, must_hold: bool = True) -> dict:
    holds = bool(lhs <= rhs + ATOL + RTOL * abs(rhs))
    return {"lhs": lhs, "rhs": rhs, "holds": holds, "must_hold": must_hold,
            "ratio": lhs / rhs if rhs > 0 else None}


def _ce(logits, y):
    from scipy.special import logsumexp

    return logsumexp(logits, axis=1) - logits[np.arange(len(y)), y]


def theorem_checks(zt, zs, ut, us, y, head: LinearHead, *, sigma: float, subsample: int, repeats: int,
                   seed: int = 0, gammas=None, exact_limit: int = 2000) -> dict:
    r"""Every term and check of THEORY.md §4.3 for one (teacher, student) pair on held-out data.

    Parameters
    ----------
    zt, zs : (n, d) arrays
        Teacher and student features of the same inputs.
    ut, us : (n, C) arrays
        Teacher and student logits.
    y : (n,) int array
    head : LinearHead
        The teacher head :math:`(W_T, b_T)`.
    sigma : float
        Gaussian-kernel bandwidth for :math:`d_k` and MMD, fixed before evaluation.
    subsample, repeats : int
        Size and number of the random subsamples for the LPs (size capped at ``n // 2``: a disjoint
        second subsample of teacher features gives the null baseline :math:`W_1(\hat P_T,\hat P_T')`).
    gammas : array, optional
        Margin grid (default: 40 log-spaced values between 1e-2 and the 99th percentile of teacher margins).
    exact_limit : int
        Largest ``n`` for which the LPs are also solved on the whole held-out set.
    """
    zt, zs, ut, us = (np.asarray(a, np.float64) for a in (zt, zs, ut, us))
    y = np.asarray(y, np.int64)
    n = len(y)
    uh = zs @ head.weight.T + head.bias
    ce_t, ce_s, ce_h = _ce(ut, y), _ce(us, y), _ce(uh, y)
    delta = np.linalg.norm(zs - zt, axis=1)
    l_ce = head.lipschitz
    w = head.weight
    l_m = max(float(np.linalg.norm(w[c] - w[k])) for c in range(len(w)) for k in range(len(w)) if c != k)
    out = {
        "n": n, "sigma": sigma,
        "risks": {"teacher": {"ce": ce_t.mean(), "error": np.mean(ut.argmax(1) != y)},
                  "student": {"ce": ce_s.mean(), "error": np.mean(us.argmax(1) != y)},
                  "hybrid": {"ce": ce_h.mean(), "error": np.mean(uh.argmax(1) != y)}},
        "constants": {"L_ce": l_ce, "L_margin": l_m, "teacher_head_op_norm": float(np.linalg.norm(w, 2))},
        "coupling": {"mean": delta.mean(), "rms": math.sqrt(np.mean(delta**2)), "p99": np.quantile(delta, 0.99),
                     "max": delta.max(), "mean_dk": float(np.mean(np.sqrt(np.maximum(
                         -2.0 * np.expm1(-delta**2 / (2 * sigma**2)), 0.0)))),
                     "logit_mean": float(np.mean(np.linalg.norm(centred(us - ut), axis=1))),
                     "teacher_feature_rms": math.sqrt(float(np.mean(np.sum((zt - zt.mean(0))**2, axis=1))))},
    }
    gap_h = abs(ce_h.mean() - ce_t.mean())
    head_term = SQRT2 * float(np.mean(np.linalg.norm(centred(us - uh), axis=1)))
    checks = {
        "coupling": _check(gap_h, l_ce * delta.mean()),
        "head": _check(abs(ce_s.mean() - ce_h.mean()), head_term),
        "student": _check(abs(ce_s.mean() - ce_t.mean()), head_term + l_ce * delta.mean()),
    }
    # Margin bound over a gamma grid: every gamma gives a valid bound, so does their minimum.
    m_t = margin(ut, y)
    if gammas is None:
        top = max(float(np.quantile(m_t, 0.99)), 2e-2)
        gammas = np.logspace(-2, math.log10(top), 40)
    gammas = np.asarray(gammas, np.float64)
    bound = np.array([np.mean(m_t <= g) + l_m / g * delta.mean() for g in gammas])
    err_h = float(np.mean(uh.argmax(1) != y))
    best = int(np.argmin(bound))
    out["margin"] = {"gammas": gammas, "bound": bound, "hybrid_error": err_h, "best_gamma": gammas[best],
                     "teacher_margin_mass": [float(np.mean(m_t <= g)) for g in gammas]}
    checks["margin"] = _check(err_h, float(bound[best]))
    checks["margin_all_gammas"] = {"holds": bool(np.all(err_h <= bound + ATOL)), "must_hold": True,
                                   "violations": int(np.sum(err_h > bound + ATOL))}
    # Full held-out set: exact LPs when n is small enough.
    if n <= exact_limit:
        marg = w1(euclidean(zs, zt))
        cond = class_conditional_w1(zs, zt, y, euclidean)
        out["full"] = {"w1_marginal": marg, "w1_conditional": cond, "w1_dk": w1(kernel_cost(zs, zt, sigma)),
                       "mmd": mmd_fixed(zs, zt, sigma)}
        checks["cond_full"] = _check(gap_h, l_ce * cond)
        checks["cond_coupling_full"] = _check(cond, delta.mean())
        checks["marg_cond_full"] = _check(marg, cond)
        checks["mmd_w1dk_full"] = _check(out["full"]["mmd"], out["full"]["w1_dk"])
        checks["marginal_form_full"] = _check(gap_h, l_ce * marg, must_hold=False)
    # Repeated subsamples: the LP terms, the gap on the same points, and a null baseline.
    m = max(2, min(subsample, n // 2))
    rng = np.random.default_rng(seed)
    rows = {k: [] for k in ("gap", "w1_marginal", "w1_conditional", "w2_marginal", "coupling_mean", "mmd",
                            "w1_null")}
    viol = {"cond": 0, "cond_coupling": 0, "marg_cond": 0}
    marginal_fail = 0
    for _ in range(repeats):
        perm = rng.permutation(n)
        a, b = perm[:m], perm[m:2 * m]
        ys = y[a]
        cost = euclidean(zs[a], zt[a])
        marg, w2sq = w1(cost), w1(cost**2)
        cond = class_conditional_w1(zs[a], zt[a], ys, euclidean)
        gap = abs(ce_h[a].mean() - ce_t[a].mean())
        cpl = delta[a].mean()
        for key, value in (("gap", gap), ("w1_marginal", marg), ("w1_conditional", cond),
                           ("w2_marginal", math.sqrt(max(w2sq, 0.0))), ("coupling_mean", cpl),
                           ("mmd", mmd_fixed(zs[a], zt[a], sigma)), ("w1_null", w1(euclidean(zt[a], zt[b])))):
            rows[key].append(value)
        viol["cond"] += not _check(gap, l_ce * cond)["holds"]
        viol["cond_coupling"] += not _check(cond, cpl)["holds"]
        viol["marg_cond"] += not _check(marg, cond)["holds"]
        marginal_fail += not _check(gap, l_ce * marg)["holds"]
    out["subsamples"] = {"size": m, "repeats": repeats,
                         **{k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "values": v}
                            for k, v in rows.items()}}
    checks["cond_subsamples"] = {"holds": viol["cond"] == 0, "must_hold": True, "violations": viol["cond"],
                                 "of": repeats}
    checks["cond_coupling_subsamples"] = {"holds": viol["cond_coupling"] == 0, "must_hold": True,
                                          "violations": viol["cond_coupling"], "of": repeats}
    checks["marg_cond_subsamples"] = {"holds": viol["marg_cond"] == 0, "must_hold": True,
                                      "violations": viol["marg_cond"], "of": repeats}
    checks["marginal_form_subsamples"] = {"holds": marginal_fail == 0, "must_hold": False,
                                          "violations": marginal_fail, "of": repeats}
    out["gap_hybrid_teacher_ce"] = gap_h
    out["checks"] = checks
    out["violations"] = sum(1 for c in checks.values() if c["must_hold"] and not c["holds"])
    return out
