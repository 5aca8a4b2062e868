"""The checker's mutant suite: deliberately wrong implementations, each with the diagnosis it should
get. ``tests/test_mutants.py`` runs them, and the gallery of correct implementations (:mod:`.gallery`)
in float64 and float32; ``kd2m-ref verify crosscheck`` writes the detection table of both."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import ot
import torch
import torch.nn.functional as F
from scipy.spatial.distance import cdist

from kd2m_ref.reference.wasserstein import sliced_projections
from kd2m_ref.testing.check import CheckError, MismatchError, PrecisionLossWarning, check

MAX_EXAMPLES = 25


@dataclass
class Case:
    name: str
    metric: str
    fn: Callable
    correct: bool  # False for every mutant (the column of the detection table)
    expect: str | None = None  # a variant name, "gradient", or None (flagged, no diagnosis expected)
    params: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)  # other check() keywords (dtype, argmap)
    bug: str = ""


def _unif(n):
    return np.full(n, 1.0 / n)


def _w(a, n):
    return _unif(n) if a is None else np.asarray(a, float) / np.sum(a)


def _emd2(a, b, cost):
    return float(ot.emd2(a, b, cost, numItermax=10_000_000))


# ------------------------------------------------------------------------ exact OT (numpy, POT)

def w_pot(xs, xt, a=None, b=None, p=2.0):
    """Correct: POT's network simplex on a scipy cdist cost."""
    return _emd2(_w(a, len(xs)), _w(b, len(xt)), cdist(xs, xt) ** p)


def w_not_squared(xs, xt, a=None, b=None, p=2.0):
    return w_pot(xs, xt, a, b, p) ** (1 / p)


def w_euclidean(xs, xt):
    return _emd2(_unif(len(xs)), _unif(len(xt)), cdist(xs, xt))


def w_ignores_weights(xs, xt, a=None, b=None, p=2.0):
    return _emd2(_unif(len(xs)), _unif(len(xt)), cdist(xs, xt) ** p)


def w_sinkhorn(xs, xt, a=None, b=None, p=2.0):
    return float(ot.sinkhorn2(_w(a, len(xs)), _w(b, len(xt)), cdist(xs, xt) ** p, 1.0, numItermax=20_000,
                              stopThr=1e-12))


def w_sqrt_then_square(fs, ft):
    """Right value, NaN gradient where student = teacher (sqrt differentiated at 0)."""
    cost = (((fs[:, None, :] - ft[None, :, :]) ** 2).sum(-1)).sqrt() ** 2
    n, m = len(fs), len(ft)
    return ot.emd2(torch.full((n,), 1.0 / n, dtype=fs.dtype), torch.full((m,), 1.0 / m, dtype=fs.dtype), cost,
                   numItermax=10_000_000)


# ------------------------------------------------------------------------------ class-conditional

def _cc(xs, xt, ys, p, weights, paired=False):
    classes = np.unique(ys)
    total = 0.0
    for c in classes:
        i = np.flatnonzero(ys == c)
        if paired:
            value = np.mean(np.sum((xs[i] - xt[i]) ** 2, 1) ** (p / 2))
        else:
            value = _emd2(_unif(len(i)), _unif(len(i)), cdist(xs[i], xt[i]) ** p)
        w = {"uniform": 1 / len(classes), "prior": len(i) / len(ys), "sum": 1.0}[weights]
        total += w * value
    return total


def cc_sum(xs, xt, ys, p=2.0):
    return _cc(xs, xt, ys, p, "sum")


def cc_uniform(xs, xt, ys, p=2.0):
    return _cc(xs, xt, ys, p, "uniform")


def cc_marginal(xs, xt, labels, p=2.0):
    return w_pot(xs, xt, p=p)


def cc_paired(xs, xt, ys, p=2.0):
    return _cc(xs, xt, ys, p, "uniform", paired=True)


# -------------------------------------------------------------------------------------- joint OT

def joint_student_student(features_student, features_teacher, labels):
    """The paper's code: the feature cost between student and student."""
    cost = cdist(features_student, features_student) ** 2 + 2.0 * (labels[:, None] != labels[None, :])
    return _emd2(_unif(len(labels)), _unif(len(labels)), cost)


def joint_onehot_no_two(xs, xt, ys):
    cost = cdist(xs, xt) ** 2 + 1.0 * (ys[:, None] != ys[None, :])
    return _emd2(_unif(len(xs)), _unif(len(xt)), cost)


# ---------------------------------------------------------------------------------------- Sinkhorn

def _entropic_pot(xs, xt, a, b, p, eps):
    """Entropic OT value <P, C> + eps KL(P || a b^T) from POT's log-domain plan."""
    a, b = _w(a, len(xs)), _w(b, len(xt))
    cost = cdist(xs, xt) ** p
    plan = ot.sinkhorn(a, b, cost, eps, method="sinkhorn_log", numItermax=50_000, stopThr=1e-12)
    mask = plan > 0
    kl = np.sum(plan[mask] * np.log(plan[mask] / np.outer(a, b)[mask]))
    return float(np.sum(plan * cost) + eps * kl)


def sinkhorn_plan_cost(xs, xt, a=None, b=None, p=2.0, epsilon=0.1):
    return float(ot.sinkhorn2(_w(a, len(xs)), _w(b, len(xt)), cdist(xs, xt) ** p, epsilon, method="sinkhorn_log",
                              numItermax=10_000, stopThr=1e-12))


def divergence_not_debiased(xs, xt, a=None, b=None, p=2.0, epsilon=0.1):
    return _entropic_pot(xs, xt, a, b, p, epsilon)


def sliced_sum(xs, xt, p=2.0, n_projections=50, seed=0):
    theta = sliced_projections(xs.shape[1], n_projections, seed)
    total = 0.0
    for t in theta:
        u, v = np.sort(xs @ t), np.sort(xt @ t)
        if len(u) != len(v):
            return float(sum(ot.wasserstein_1d(xs @ t, xt @ t, p=p) for t in theta))
        total += np.mean(np.abs(u - v) ** p)
    return total


# ---------------------------------------------------------------------------------------- Gaussian

def _diag_moments(x, correction=0):
    mu = x.mean(0)
    std = torch.linalg.vector_norm(x - mu, dim=0) / math.sqrt(len(x) - correction)
    return mu, std


def gw_diag(fs, ft):
    """Correct (params covariance='diag'): ||dmu||^2 + ||dsigma||^2."""
    (ms, ss), (mt, st) = _diag_moments(fs), _diag_moments(ft)
    return ((ms - mt) ** 2).sum() + ((ss - st) ** 2).sum()


def gw_diag_not_squared(fs, ft):
    return gw_diag(fs, ft).sqrt()


def gw_diag_unbiased(fs, ft):
    (ms, ss), (mt, st) = _diag_moments(fs, 1), _diag_moments(ft, 1)
    return ((ms - mt) ** 2).sum() + ((ss - st) ** 2).sum()


def gw_diag_variance(fs, ft):
    (ms, ss), (mt, st) = _diag_moments(fs), _diag_moments(ft)
    return ((ms - mt) ** 2).sum() + ((ss ** 2 - st ** 2) ** 2).sum()


def gkl_diag(fs, ft, direction="student_teacher"):
    """Diagonal KL; log-ratios and expm1 keep it accurate near equality."""
    (ms, ss), (mt, st) = _diag_moments(fs), _diag_moments(ft)
    if direction == "teacher_student":
        ms, ss, mt, st = mt, st, ms, ss
    z = 2 * (torch.log(ss) - torch.log(st))  # log(var_s / var_t)
    return 0.5 * (torch.expm1(z) - z + (ms - mt) ** 2 / st ** 2).sum()


def gkl_swapped(fs, ft):
    return gkl_diag(fs, ft, "teacher_student")


def gkl_missing_half(fs, ft):
    return 2 * gkl_diag(fs, ft)


def ccgw_diag_sum(fs, ft, labels):
    total = fs.new_zeros(())
    for c in torch.unique(labels):
        i = labels == c
        total = total + gw_diag(fs[i], ft[i])
    return total


def _wkd(f_s, f_t, grid, mean_weight, unbiased=True, cell_mean=True):
    """WKD-F (diagonal Gaussians of grid cells, sigma = sqrt(var + 1e-5)); the mean over images and,
    with ``cell_mean``, over cells."""
    gh, gw = (grid, grid) if isinstance(grid, int) else grid
    b, c, h, w = f_s.shape
    total = f_s.new_zeros(())
    for i in range(gh):
        for j in range(gw):
            rows, cols = slice(i * h // gh, -(-(i + 1) * h // gh)), slice(j * w // gw, -(-(j + 1) * w // gw))
            s, t = f_s[:, :, rows, cols].reshape(b, c, -1), f_t[:, :, rows, cols].reshape(b, c, -1)
            std_s = (s.var(-1, unbiased=unbiased) + 1e-5).sqrt()
            std_t = (t.var(-1, unbiased=unbiased) + 1e-5).sqrt()
            total = total + mean_weight * ((s.mean(-1) - t.mean(-1)) ** 2).sum() + ((std_s - std_t) ** 2).sum()
    return total / (b * (gh * gw if cell_mean else 1))


def wkd_weight_4(f_s, f_t, grid=1):
    return _wkd(f_s, f_t, grid, 4.0)


def wkd_biased_var(f_s, f_t, grid=1, mean_weight=1.0):
    return _wkd(f_s, f_t, grid, mean_weight, unbiased=False)


def wkd_cell_sum(f_s, f_t, grid=1, mean_weight=1.0):
    return _wkd(f_s, f_t, grid, mean_weight, cell_mean=False)


# ------------------------------------------------------------------------------------------- MMD

def _sq(x, y):
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


def mmd_gauss(x, y, unbiased=False, factor=2.0, detach=True):
    """Gaussian MMD^2 with the 'mean' bandwidth rule (zero diagonals included)."""
    dxx, dyy, dxy = _sq(x, x), _sq(y, y), _sq(x, y)
    with torch.set_grad_enabled(not detach):
        pos = [d[d > 0].sqrt() for d in (dxx, dyy, dxy)]
        s = sum(p.sum() for p in pos) / (dxx.numel() + dyy.numel() + dxy.numel())
        s = torch.where(s > 0, s, torch.ones_like(s))
    kxx, kyy, kxy = (torch.exp(-d / (factor * s ** 2)) for d in (dxx, dyy, dxy))
    n, m = len(x), len(y)
    if unbiased:
        return ((kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1)) + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
                - 2 * kxy.mean())
    return kxx.mean() + kyy.mean() - 2 * kxy.mean()


def mmd_biased_claimed_unbiased(x, y):
    return mmd_gauss(x, y, unbiased=False)


def mmd_unbiased_claimed_biased(x, y):
    return mmd_gauss(x, y, unbiased=True)


def mmd_no_factor_two(x, y):
    return mmd_gauss(x, y, factor=1.0)


def mmd_not_detached(x, y):
    return mmd_gauss(x, y, detach=False)


def _nst(f_s, f_t, normalize=True, teacher_term=True, reduce=torch.mean):
    """NST with switches: F.normalize over positions, (a.b)^2 kernels, per-image means reduced over the batch."""
    f_s, f_t = f_s.reshape(f_s.shape[0], f_s.shape[1], -1), f_t.reshape(f_t.shape[0], f_t.shape[1], -1)
    if normalize:
        f_s, f_t = F.normalize(f_s, dim=2), F.normalize(f_t, dim=2)

    def poly(a, b):
        return (torch.bmm(a, b.transpose(1, 2)) ** 2).mean((1, 2))

    per_image = poly(f_s, f_s) - 2 * poly(f_s, f_t) + (poly(f_t, f_t).detach() if teacher_term else 0.0)
    return reduce(per_image)


def nst_no_normalize(f_s, f_t):
    return _nst(f_s, f_t, normalize=False)


def nst_drops_teacher_term(f_s, f_t):
    """NST's full_loss=False."""
    return _nst(f_s, f_t, teacher_term=False)


def nst_batch_sum(f_s, f_t):
    return _nst(f_s, f_t, reduce=torch.sum)


# ------------------------------------------------------------------------------------- Hinton KD

def kd_missing_t2(logits_student, logits_teacher, T=1.0):
    return F.kl_div(F.log_softmax(logits_student / T, 1), F.log_softmax(logits_teacher / T, 1), log_target=True,
                    reduction="batchmean")


def kd_reverse(logits_student, logits_teacher, T=1.0):
    """The paper's code: KL(student || teacher)."""
    return F.kl_div(F.log_softmax(logits_teacher / T, 1), F.log_softmax(logits_student / T, 1), log_target=True,
                    reduction="batchmean") * T * T


def kd_batch_sum(logits_student, logits_teacher, T=1.0):
    return F.kl_div(F.log_softmax(logits_student / T, 1), F.log_softmax(logits_teacher / T, 1), log_target=True,
                    reduction="sum") * T * T


# ------------------------------------------------------------------- defects seen in published code

def paper_class_sum_stabilised(xs, xt, ys, p=2.0):
    """The paper's class-conditional loss as published: classes summed, float32 uniform weights and a
    1e-9 stabiliser on the cost (precision findings that must not hide the class sum)."""
    total = 0.0
    for c in np.unique(ys):
        i = np.flatnonzero(ys == c)
        w = np.ones(len(i), dtype=np.float32) / len(i)
        total += float(ot.emd2(w.astype(np.float64), w.astype(np.float64), cdist(xs[i], xt[i]) ** p + 1e-9))
    return total


def bures_commuting(xs, xt):
    """tr(S_s + S_t - 2 S_s^1/2 S_t^1/2): the cross term of commuting covariances (a wrong eigenvalue
    formula for the Bures term), exact only when the covariances commute."""
    def root(c):
        lam, vec = np.linalg.eigh(c)
        return (vec * np.sqrt(np.clip(lam, 0, None))) @ vec.T

    cs, ct = np.cov(xs.T, bias=True).reshape(xs.shape[1], -1), np.cov(xt.T, bias=True).reshape(xt.shape[1], -1)
    return float(np.sum((xs.mean(0) - xt.mean(0)) ** 2) + np.trace(cs + ct - 2 * root(cs) @ root(ct)))


def cuturi_plan_cost(xs, xt, p=2.0, epsilon=0.1):
    """<P_eps, C> of a log-domain torch Sinkhorn (a published Wasserstein-KD loss), not OT_eps."""
    cost = torch.cdist(xs, xt) ** p
    n, m = cost.shape
    log_a, log_b = torch.full((n,), -math.log(n), dtype=xs.dtype), torch.full((m,), -math.log(m), dtype=xs.dtype)
    f, g = torch.zeros(n, dtype=xs.dtype), torch.zeros(m, dtype=xs.dtype)
    for _ in range(300):
        f = -epsilon * torch.logsumexp(log_b[None, :] + (g[None, :] - cost) / epsilon, 1)
        g = -epsilon * torch.logsumexp(log_a[:, None] + (f[:, None] - cost) / epsilon, 0)
    plan = torch.exp(log_a[:, None] + log_b[None, :] + (f[:, None] + g[None, :] - cost) / epsilon)
    return (plan * cost).sum()


WKD_L = {"epsilon": 0.05, "value": "plan_cost", "n_iter": 10}


def _wkd_flow(p, q, cost, lam, iters):
    """Kernel-form Sinkhorn from u = 1 (rows p, columns q), ``iters`` iterations: the plan."""
    kernel = torch.exp(-cost / lam).expand(len(p), -1, -1)
    u = torch.ones_like(p).unsqueeze(2)
    for _ in range(iters):
        v = q.unsqueeze(2) / torch.bmm(kernel.transpose(1, 2), u)
        u = p.unsqueeze(2) / torch.bmm(kernel, v)
    return u * kernel * v.transpose(1, 2)


def wkd_logit_10(logits_student, logits_teacher, temperature=1.0, cost_matrix=None):
    p, q = (torch.softmax(z / temperature, dim=1) for z in (logits_student, logits_teacher))
    return (_wkd_flow(p, q, cost_matrix, 0.05, 10) * cost_matrix).sum((1, 2)).mean()


def wkd_logit_t2(logits_student, logits_teacher, temperature=1.0, cost_matrix=None):
    return temperature ** 2 * wkd_logit_10(logits_student, logits_teacher, temperature, cost_matrix)


def wkd_logit_teacher_rows(logits_student, logits_teacher, temperature=1.0, cost_matrix=None):
    p, q = (torch.softmax(z / temperature, dim=1) for z in (logits_student, logits_teacher))
    return (_wkd_flow(q, p, cost_matrix.T, 0.05, 10) * cost_matrix.T).sum((1, 2)).mean()


def histogram_ot_eps(us, ut, temperature=1.0, cost=None):
    p, q = (np.exp(z / temperature - np.log(np.exp(z / temperature).sum(1, keepdims=True))) for z in (us, ut))
    total = 0.0
    for a, b in zip(p, q):
        plan = ot.sinkhorn(a, b, cost, 0.5, method="sinkhorn_log", numItermax=100_000, stopThr=1e-13)
        total += float(np.sum(plan * cost) + 0.5 * np.sum(plan * np.log(plan / np.outer(a, b))))
    return total / len(p)


MMD_U = {"kernel": "gaussian", "bandwidth": "mean", "estimator": "unbiased"}
MMD_V = {"kernel": "gaussian", "bandwidth": "mean", "estimator": "biased"}
NST = {"kernel": "polynomial", "degree": 2, "offset": 0.0, "estimator": "biased", "normalize": "l2"}

CASES = [
    # wrong implementations, with the diagnosis they should get
    Case("w2_not_squared", "wasserstein", w_not_squared, False, "p_th_root", bug="returns W_p, not W_p^p"),
    Case("euclidean_cost", "wasserstein", w_euclidean, False, "euclidean_cost", bug="cost ||x - y|| for W2^2"),
    Case("weights_ignored", "wasserstein", w_ignores_weights, False, "ignores_weights", bug="a, b accepted, not used"),
    Case("sinkhorn_as_exact", "wasserstein", w_sinkhorn, False, "sinkhorn_plan_cost(eps=1.0)",
         bug="ot.sinkhorn2(reg=1) passed off as exact OT"),
    Case("nan_grad_at_equality", "wasserstein", w_sqrt_then_square, False, "gradient",
         bug="sqrt(d2)**2: NaN gradient where student = teacher"),
    Case("class_weights_sum", "class_conditional_wasserstein", cc_sum, False, "weights=sum",
         bug="sums the classes (the paper's code) for the default 'uniform'"),
    Case("class_weights_uniform", "class_conditional_wasserstein", cc_uniform, False, "weights=uniform",
         params={"weights": "prior"}, bug="1/K where n_c/n is claimed"),
    Case("labels_ignored", "class_conditional_wasserstein", cc_marginal, False, "marginal", bug="marginal W"),
    Case("paired_mse", "class_conditional_wasserstein", cc_paired, False, "paired_cost", bug="MSE, no transport"),
    Case("student_student_cost", "joint_wasserstein", joint_student_student, False, "student_student_cost",
         bug="cdist(features_student, features_student) (the paper's code)"),
    Case("onehot_without_2", "joint_wasserstein", joint_onehot_no_two, False, "onehot_without_factor_2",
         bug="label cost 1[y != y']"),
    Case("sinkhorn_plan_cost", "sinkhorn", sinkhorn_plan_cost, False, "value=plan_cost", bug="POT's sinkhorn2 value"),
    Case("divergence_not_debiased", "sinkhorn_divergence", divergence_not_debiased, False, "not_debiased",
         bug="entropic OT for the divergence"),
    Case("sliced_sum", "sliced_wasserstein", sliced_sum, False, "sum_over_projections", bug="sum over directions"),
    Case("gaussian_not_squared", "gaussian_wasserstein", gw_diag_not_squared, False, "not_squared",
         params={"covariance": "diag"}, bug="returns W2"),
    Case("gaussian_unbiased_std", "gaussian_wasserstein", gw_diag_unbiased, False, "estimator=unbiased",
         params={"covariance": "diag"}, bug="1/(n-1) std (torch.std default)"),
    Case("gaussian_variance", "gaussian_wasserstein", gw_diag_variance, False, "variance_not_std",
         params={"covariance": "diag"}, bug="variances in place of standard deviations"),
    Case("kl_swapped", "gaussian_kl", gkl_swapped, False, "direction=teacher_student", params={"covariance": "diag"},
         bug="KL(teacher || student)"),
    Case("kl_missing_half", "gaussian_kl", gkl_missing_half, False, "missing_half", params={"covariance": "diag"},
         bug="no 1/2"),
    Case("class_gaussian_sum", "class_conditional_gaussian_wasserstein", ccgw_diag_sum, False, "weights=sum",
         params={"covariance": "diag"}, bug="sums the classes for 'uniform'"),
    Case("wkd_mean_weight_4", "grid_gaussian_wasserstein", wkd_weight_4, False, "mean_weight=4",
         params={"mean_weight": 1.0, "eps": 1e-5}, bug="WKD-F's CIFAR mean weight 4 where 1 is claimed"),
    Case("wkd_biased_variance", "grid_gaussian_wasserstein", wkd_biased_var, False, "estimator=mle",
         params={"eps": 1e-5}, bug="torch.var(unbiased=False) in WKD-F"),
    Case("wkd_cell_sum", "grid_gaussian_wasserstein", wkd_cell_sum, False, "cell_sum",
         params={"eps": 1e-5}, bug="WKD-F summed over the grid cells"),
    Case("biased_as_unbiased", "mmd", mmd_biased_claimed_unbiased, False, "estimator=biased", params=MMD_U,
         bug="V-statistic passed off as unbiased"),
    Case("unbiased_as_biased", "mmd", mmd_unbiased_claimed_biased, False, "estimator=unbiased", params=MMD_V,
         bug="U-statistic passed off as biased"),
    Case("bandwidth_no_factor_2", "mmd", mmd_no_factor_two, False, "bandwidth_exp(-d2/s2)", params=MMD_V,
         bug="exp(-d^2 / s^2)"),
    Case("bandwidth_not_detached", "mmd", mmd_not_detached, False, "gradient", params=MMD_V,
         bug="gradient through the bandwidth rule, detach claimed"),
    Case("nst_no_normalize", "set_mmd", nst_no_normalize, False, "normalize=none", params=NST,
         bug="NST without F.normalize"),
    Case("nst_drops_teacher_term", "set_mmd", nst_drops_teacher_term, False, "drops_teacher_term", params=NST,
         bug="NST's full_loss=False: the teacher-teacher kernel mean left out"),
    Case("nst_batch_sum", "set_mmd", nst_batch_sum, False, "batch_sum", params=NST,
         bug="per-image MMD^2 summed over the batch"),
    Case("wkd_logit_unconverged", "histogram_ot", wkd_logit_10, False, "value=plan_cost, n_iter=10",
         params={"epsilon": 0.05, "value": "plan_cost", "n_iter": None},
         bug="WKD-L's 10 kernel Sinkhorn iterations where the converged plan cost is claimed"),
    Case("wkd_logit_T2", "histogram_ot", wkd_logit_t2, False, "times_T2", params=WKD_L,
         bug="T^2 times the plan cost (Hinton's factor carried over)"),
    Case("wkd_logit_teacher_rows", "histogram_ot", wkd_logit_teacher_rows, False, "swapped", params=WKD_L,
         bug="the teacher's histogram as the rows of the plan"),
    Case("histogram_ot_eps_as_plan_cost", "histogram_ot", histogram_ot_eps, False, "value=ot_eps, n_iter=None",
         params={"epsilon": 0.5, "value": "plan_cost", "n_iter": None},
         bug="<P, C> + eps KL(P || pq^T) where the plan's cost is claimed"),
    Case("kd_missing_T2", "hinton_kd", kd_missing_t2, False, "missing_T2", bug="no T^2"),
    Case("kd_reverse_kl", "hinton_kd", kd_reverse, False, "direction=student_teacher",
         bug="KL(student || teacher) (the paper's code)"),
    Case("kd_batch_sum", "hinton_kd", kd_batch_sum, False, "batch_sum", bug="reduction='sum'"),
    Case("paper_class_sum_stabilised", "class_conditional_wasserstein", paper_class_sum_stabilised, False,
         "weights=sum", bug="classes summed, float32 weights, +1e-9 on the cost (the paper's code)"),
    Case("bures_commuting", "gaussian_wasserstein", bures_commuting, False, None,
         bug="cross term tr(S_s^1/2 S_t^1/2): right only for commuting covariances"),
    Case("cuturi_plan_cost", "sinkhorn", cuturi_plan_cost, False, "value=plan_cost",
         bug="<P_eps, C> of a torch Sinkhorn (a published Wasserstein-KD loss)"),
]


def evaluate(case: Case, max_examples: int = MAX_EXAMPLES) -> dict:
    """Run ``check`` on one mutant: did it flag it, with which diagnosis."""
    start = time.perf_counter()
    row = {"name": case.name, "metric": case.metric, "correct": False, "bug": case.bug, "expected": case.expect,
           "flagged": False, "diagnosis": None, "matches": [], "diagnosed": None}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PrecisionLossWarning)
            report = check(case.fn, case.metric, params=case.params, max_examples=max_examples, **case.options)
        row["report"] = str(report)
    except MismatchError as err:
        d = err.diagnosis
        row.update(flagged=True, diagnosis=d.message, diagnosis_kind=d.kind, failure_kind=err.kind,
                   matches=[n for n, _ in d.matches], report=str(err), severity=err.failure.severity)
        if case.expect == "gradient":
            row["diagnosed"] = d.kind == "gradient"
        elif case.expect is not None:
            row["diagnosed"] = case.expect in row["matches"]
    except CheckError as err:
        row.update(flagged=None, diagnosis=f"check could not run: {err}")
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row


def evaluate_gallery(entry, max_examples: int = MAX_EXAMPLES) -> dict:
    """Run ``check`` on one correct implementation in float64 and float32: it must conform in both."""
    start = time.perf_counter()
    row = {"name": entry.name, "metric": entry.metric, "correct": True, "bug": entry.note, "expected": None,
           "flagged": False, "diagnosis": None, "matches": [], "diagnosed": None, "verdicts": {}}
    for dtype in ("float64", "float32"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PrecisionLossWarning)
                report = check(entry.fn, entry.metric, params=entry.params, max_examples=max_examples, dtype=dtype)
            run = report.runs[0]
            row["verdicts"][dtype] = {"verdict": report.verdict, "worst_floor_ratio": run.worst_floor_ratio,
                                      "worst_units": run.worst_units, "where": list(run.worst_where)}
        except MismatchError as err:
            row.update(flagged=True, diagnosis=err.diagnosis.message, report=str(err))
            row["verdicts"][dtype] = {"verdict": "differs", "severity": err.failure.severity}
        except CheckError as err:
            row.update(flagged=None, diagnosis=f"check could not run: {err}")
            row["verdicts"][dtype] = {"verdict": "error"}
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row


def detection_table(rows: list[dict]) -> dict:
    wrong = [r for r in rows if not r["correct"]]
    right = [r for r in rows if r["correct"]]
    with_diag = [r for r in wrong if r["expected"] is not None]
    return {"mutants": len(wrong), "mutants_caught": sum(bool(r["flagged"]) for r in wrong),
            "mutants_with_expected_diagnosis": len(with_diag),
            "mutants_diagnosed": sum(bool(r["diagnosed"]) for r in with_diag),
            "correct": len(right), "correct_passed": sum(r["flagged"] is False for r in right)}
