r"""Theorem 3.1 on trained networks: risks, coupling and distribution terms, bounds.

Inputs are held-out arrays: teacher and student features :math:`z^T_i, z^S_i`, logits, labels, and
the teacher head :math:`u=Wz+b`. The *hybrid* network is the teacher head on student features.
Checks that must hold on the empirical measure they are computed on (they are theorems for any
:math:`P`; on held-out data they are sanity checks and tightness measurements):

* ``cond``: :math:`|\mathrm{CE}(h_T\phi_S)-\mathrm{CE}(h_T\phi_T)|\le L_{CE}\sum_c\hat p_cW_1^c\le
  L_{CE}\,\mathbb E\|\phi_S-\phi_T\|`, :math:`L_{CE}=\sqrt2\|W_T\|_{op}` on each subsample;
* ``margin``: :math:`\mathrm{Err}(h_T\phi_S)\le\hat P(m_T\le\gamma)+\tfrac{L_m}{\gamma}\mathbb E\|\Delta\phi\|`
  for every :math:`\gamma` of a grid, :math:`L_m=\max_{c\ne c'}\|w_c-w_{c'}\|`;
* ``head``: :math:`|\mathrm{CE}(h_S\phi_S)-\mathrm{CE}(h_T\phi_S)|\le\sqrt2\,\mathbb E\|\Pi(u_S-u_H)\|`;
* ``student``: the actual student-teacher CE gap :math:`\le` head term + :math:`L_{CE}\mathbb E\|\Delta\phi\|`;
* ``kernel_head`` (:func:`kernel_head_check`, when training features are given): Lemma 1 in its own
  form, :math:`|\mathbb E_{P_S}\ell-\mathbb E_{P_T}\ell|\le\|\ell\|_{\mathcal H_k}\mathrm{MMD}_k(P_S,P_T)`, for
  the squared discrepancy :math:`\ell` of two kernel heads (an RKHS function with a computable norm bound).

**Vacuity** (``vacuity``): each corollary's bound next to the value it must beat to say anything: the
hybrid-CE bound vs chance :math:`\log C`, the hybrid-error bound vs 1 (and vs the majority-class
error), the kernel-head bound vs its trivial bound :math:`\sum_c\|g_c\|^2_{k'}\ge\sup\ell-\inf\ell`.

The **marginal form** :math:`\text{gap}\le L_{CE}W_1(\text{marginals})` needs assumption (A*) (the
labels are a function of the features) and may fail: it is reported as data (``marginal_form``), never asserted.

Distances and exact OT: :mod:`verification.distances`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.distance import pdist

from ..distances import (
    LD,
    SQRT2,
    class_conditional_w1,
    euclidean_distance,
    kernel_distance,
    mmd,
    ot_cost,
    paired_kernel_distance,
    gaussian_kernel_ld,
    squared_euclidean_distance,
)
from ..functions import KernelExpansion, LinearHead

#: Relative and absolute slack of the must-hold checks (float64 sums and LP optimality).
RTOL, ATOL = 1e-9, 1e-9


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


def count_violations(checks: dict) -> int:
    """Number of the must-hold checks of ``checks`` that failed."""
    return sum(1 for c in checks.values() if c["must_hold"] and not c["holds"])


def fit_kernel_head(z, y, num_classes: int, sigma: float, ridge: float) -> np.ndarray:
    r"""Kernel ridge regression of one-hot labels on features: the coefficients
    :math:`A=(K+\lambda mI)^{-1}Y`, shape ``(m, C)``, of the head :math:`h_c=\sum_jA_{jc}k_\sigma(z_j,\cdot)`
    (:math:`\lambda` = ``ridge``)."""
    z = np.asarray(z, np.float64)
    m = len(z)
    gram = np.exp(-squared_euclidean_distance(z, z) / (2.0 * sigma**2))
    onehot = np.eye(num_classes)[np.asarray(y, np.int64)]
    return np.linalg.solve(gram + ridge * m * np.eye(m), onehot)


def kernel_head_check(zt, zs, zt_fit, zs_fit, y_fit, num_classes: int, *, sigma: float, ridge: float = 1e-3,
                      y=None, mmd_value: float | None = None, exact_norm_limit: int = 40) -> dict:
    r"""Lemma 1 in its own form on network features, with a loss whose RKHS norm is bounded exactly.

    Two kernel heads are fitted by kernel ridge regression (:func:`fit_kernel_head`) to the one-hot
    labels ``y_fit`` of the same training inputs, with the Gaussian kernel :math:`k'` of bandwidth
    :math:`\sigma'=\sqrt2\,\sigma`: :math:`h^*` on the teacher's features ``zt_fit`` and :math:`h` on the
    student's ``zs_fit``. With :math:`g_c=h_c-h^*_c` (an expansion of :math:`k'` on both centre sets) the loss

    .. math:: \ell(z)=\sum_c g_c(z)^2

    lies in the RKHS of :math:`k=k'^2` (the Gaussian kernel of bandwidth :math:`\sigma`) with
    :math:`\|\ell\|_k\le\sum_c\|g_c^2\|_k\le\sum_c\|g_c\|_{k'}^2` (the norm of a product in the product
    kernel's RKHS; :meth:`verification.functions.KernelExpansion.squared` is the construction). On the
    empirical held-out measures :math:`P_S` (``zs``) and :math:`P_T` (``zt``) of the same inputs, Lemma 1 gives

    .. math:: |\mathbb E_{P_S}\ell-\mathbb E_{P_T}\ell|\le\Big(\sum_c\|g_c\|_{k'}^2\Big)\,\mathrm{MMD}_k(P_S,P_T),

    exactly (the returned ``check`` is must-hold). Since :math:`|g_c(z)|\le\|g_c\|_{k'}` (unit diagonal),
    :math:`0\le\ell\le\sum_c\|g_c\|^2_{k'}`: that sum is the trivial bound, and the kernel bound is
    informative iff :math:`\mathrm{MMD}_k<1`.

    Parameters
    ----------
    zt, zs : (n, d) arrays
        Teacher and student held-out features of the same inputs.
    zt_fit, zs_fit : (m, d) arrays
        Teacher and student training features of the same ``m`` training inputs.
    y_fit : (m,) int array
        Their labels.
    num_classes : int
    sigma : float
        Bandwidth of :math:`k` (the experiment's, fixed before evaluation); the heads use :math:`\sqrt2\sigma`.
    ridge : float
        :math:`\lambda` of the ridge :math:`\lambda mI`.
    y : (n,) int array, optional
        Held-out labels: when given, the held-out accuracy of both kernel heads is recorded.
    mmd_value : float, optional
        :math:`\mathrm{MMD}_k(P_S,P_T)` when already computed.
    exact_norm_limit : int
        When :math:`g_c` has at most this many centres (:math:`J=2m`), the exact :math:`\|\ell\|_k` is also
        computed (``norm_exact``, an expansion on :math:`J^2` centres).
    """
    zt, zs, zt_fit, zs_fit = (np.asarray(a, np.float64) for a in (zt, zs, zt_fit, zs_fit))
    sigma_head = SQRT2 * sigma
    coef_t = fit_kernel_head(zt_fit, y_fit, num_classes, sigma_head, ridge)
    coef_s = fit_kernel_head(zs_fit, y_fit, num_classes, sigma_head, ridge)
    centres = np.concatenate([zs_fit, zt_fit])
    coef = np.concatenate([coef_s, -coef_t])  # (J, C): g_c = sum_j coef[j, c] k'(centres_j, .)
    c_ld = coef.astype(LD)
    gram = gaussian_kernel_ld(centres, centres, sigma_head)
    norms_sq = np.maximum(np.einsum("jc,jk,kc->c", c_ld, gram, c_ld), LD(0.0))
    norm_bound = float(np.sum(norms_sq))
    m = len(zs_fit)
    gram_s, gram_t = gaussian_kernel_ld(zs, centres, sigma_head), gaussian_kernel_ld(zt, centres, sigma_head)
    loss_s = np.sum((gram_s @ c_ld) ** 2, axis=1)  # l(z^S_i)
    loss_t = np.sum((gram_t @ c_ld) ** 2, axis=1)
    gap = float(abs(np.mean(loss_s - loss_t)))
    mmd_k = mmd(zs, zt, sigma) if mmd_value is None else float(mmd_value)
    bound = norm_bound * mmd_k
    out = {"m": m, "n": len(zt), "ridge": ridge, "sigma_head": sigma_head, "sigma_loss": sigma,
           "gap": gap, "bound": bound, "trivial": norm_bound, "mmd": mmd_k,
           "ratio": gap / bound if bound > 0 else None, "ratio_to_trivial": bound / norm_bound if norm_bound > 0
           else None, "vacuous": bool(mmd_k >= 1.0),
           "mean_loss_student": float(np.mean(loss_s)), "mean_loss_teacher": float(np.mean(loss_t)),
           "max_loss": float(max(np.max(loss_s), np.max(loss_t))),
           # l >= 0, so the gap is also at most max(E_S l, E_T l): an a-posteriori scale, not a bound given in advance
           "observed_scale": float(max(np.mean(loss_s), np.mean(loss_t))),
           "vacuous_vs_observed": bool(bound >= max(np.mean(loss_s), np.mean(loss_t))),
           "g_norms": [float(np.sqrt(v)) for v in norms_sq]}
    if y is not None:
        y = np.asarray(y, np.int64)
        pred_t = (gram_t[:, m:] @ coef_t.astype(LD)).argmax(1)  # h*(z^T_i): the teacher's centres
        pred_s = (gram_s[:, :m] @ coef_s.astype(LD)).argmax(1)  # h(z^S_i): the student's centres
        out["accuracy"] = {"teacher_head_on_teacher": float(np.mean(pred_t == y)),
                           "student_head_on_student": float(np.mean(pred_s == y))}
    if len(centres) <= exact_norm_limit:
        squares = [KernelExpansion(centres, coef[:, c], sigma_head).squared() for c in range(coef.shape[1])]
        loss = KernelExpansion(squares[0].centers, np.sum([q.coef for q in squares], axis=0), squares[0].sigma)
        out["norm_exact"] = loss.norm()
        out["bound_exact_norm"] = out["norm_exact"] * mmd_k
    out["check"] = _check(gap, bound)
    return out


def _ce(logits, y):
    from scipy.special import logsumexp

    return logsumexp(logits, axis=1) - logits[np.arange(len(y)), y]


def theorem_checks(zt, zs, ut, us, y, head: LinearHead, *, sigma: float, subsample: int, repeats: int,
                   seed: int = 0, gammas=None, exact_limit: int = 2000, fit=None, kernel_points: int = 1000,
                   ridge: float = 1e-3) -> dict:
    r"""Every term and check of Theorem 3.1 and its corollaries for one (teacher, student) pair on held-out data.

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
    fit : tuple ``(zt_fit, zs_fit, y_fit)``, optional
        Teacher and student *training* features of the same inputs and their labels: the kernel-head
        check (:func:`kernel_head_check`) runs when given.
    kernel_points : int
        Held-out points of the kernel-head check (all when ``n`` is at most this; otherwise a fixed
        random subset: the inequality is exact on any empirical measure).
    ridge : float
        Ridge of the kernel heads (:func:`fit_kernel_head`).
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
                     "max": delta.max(), "mean_dk": float(np.mean(paired_kernel_distance(zs, zt, sigma))),
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
        marg = ot_cost(euclidean_distance(zs, zt))
        cond = class_conditional_w1(zs, zt, y, euclidean_distance)
        out["full"] = {"w1_marginal": marg, "w1_conditional": cond, "w1_dk": ot_cost(kernel_distance(zs, zt, sigma)),
                       "mmd": mmd(zs, zt, sigma)}
        checks["cond_full"] = _check(gap_h, l_ce * cond)
        checks["cond_coupling_full"] = _check(cond, delta.mean())
        checks["marg_cond_full"] = _check(marg, cond)
        checks["mmd_w1dk_full"] = _check(out["full"]["mmd"], out["full"]["w1_dk"])
        checks["marginal_form_full"] = _check(gap_h, l_ce * marg, must_hold=False)
    # Repeated subsamples: the LP terms, the gap on the same points, and a null baseline.
    m = max(2, min(subsample, n // 2))
    rng = np.random.default_rng(seed)
    rows = {k: [] for k in ("gap", "w1_marginal", "w1_conditional", "w2_marginal", "coupling_mean", "mmd",
                            "w1_null", "ce_bound")}
    viol = {"cond": 0, "cond_coupling": 0, "marg_cond": 0}
    marginal_fail = 0
    for _ in range(repeats):
        perm = rng.permutation(n)
        a, b = perm[:m], perm[m:2 * m]
        ys = y[a]
        cost = euclidean_distance(zs[a], zt[a])
        marg, w2sq = ot_cost(cost), ot_cost(squared_euclidean_distance(zs[a], zt[a]))
        cond = class_conditional_w1(zs[a], zt[a], ys, euclidean_distance)
        gap = abs(ce_h[a].mean() - ce_t[a].mean())
        cpl = delta[a].mean()
        for key, value in (("gap", gap), ("w1_marginal", marg), ("w1_conditional", cond),
                           ("w2_marginal", math.sqrt(max(w2sq, 0.0))), ("coupling_mean", cpl),
                           ("mmd", mmd(zs[a], zt[a], sigma)), ("w1_null", ot_cost(euclidean_distance(zt[a], zt[b]))),
                           ("ce_bound", ce_t[a].mean() + l_ce * cond)):
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
    if fit is not None:
        zt_fit, zs_fit, y_fit = fit
        pts = np.arange(n) if n <= kernel_points else np.sort(
            np.random.default_rng(seed).choice(n, kernel_points, replace=False))
        known = out["full"]["mmd"] if "full" in out and len(pts) == n else None
        kh = kernel_head_check(zt[pts], zs[pts], zt_fit, zs_fit, y_fit, len(w), sigma=sigma, ridge=ridge, y=y[pts],
                               mmd_value=known)
        checks["kernel_head"] = kh.pop("check")
        out["kernel_head"] = kh
    # Vacuity: each bound next to the value it has to beat to say anything.
    chance = math.log(len(w))
    if "full" in out:
        ce_bound, ce_on = float(ce_t.mean() + l_ce * out["full"]["w1_conditional"]), "held-out set"
    else:
        ce_bound, ce_on = float(np.mean(rows["ce_bound"])), f"mean over subsamples of size {m}"
    majority_error = float(1.0 - np.bincount(y, minlength=len(w)).max() / n)
    margin_bound = float(bound[best])
    out["vacuity"] = {
        "ce": {"bound": ce_bound, "trivial": chance, "vacuous": bool(ce_bound > chance), "on": ce_on,
               "what": "CE(h_T phi_S) <= CE(h_T phi_T) + L_CE sum_c p_c W1(class c), against chance log C"},
        "margin": {"bound": margin_bound, "trivial": 1.0, "vacuous": bool(margin_bound >= 1.0),
                   "majority_error": majority_error, "above_majority_error": bool(margin_bound >= majority_error),
                   "what": "Err(h_T phi_S) <= P(m_T <= gamma) + L_m E||dphi|| / gamma (best gamma), against 1"},
    }
    if "kernel_head" in out:
        kh = out["kernel_head"]
        out["vacuity"]["kernel_head"] = {"bound": kh["bound"], "trivial": kh["trivial"], "vacuous": kh["vacuous"],
                                         "what": "|E_S l - E_T l| <= sum_c ||g_c||^2 MMD_k, against sum_c ||g_c||^2"}
    out["gap_hybrid_teacher_ce"] = gap_h
    out["checks"] = checks
    out["violations"] = count_violations(checks)
    return out
