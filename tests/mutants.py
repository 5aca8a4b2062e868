"""The checker's mutant suite: deliberately wrong implementations (each with the diagnosis it should
get) and correct ones written differently from ours (POT, closed forms, other autograd paths), which
must pass. ``tests/test_mutants.py`` runs them; this file also writes the detection table::

    .venv/bin/python tests/mutants.py --out verification/results/quick/crosscheck_detection.json
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import ot
import torch
import torch.nn.functional as F
from scipy.spatial.distance import cdist
from scipy.special import log_softmax

from kd2m_ref.reference.wasserstein import sliced_projections
from kd2m_ref.testing.check import CheckError, MismatchError, check

MAX_EXAMPLES = 25


@dataclass
class Case:
    name: str
    metric: str
    fn: Callable
    correct: bool
    expect: str | None = None  # a variant name, "gradient", or "precision" (no variant, digits agree)
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


def w_pot_torch(fs, ft):
    """Correct: POT's emd2 with the torch backend (differentiable), squared distances by differences."""
    cost = ((fs[:, None, :] - ft[None, :, :]) ** 2).sum(-1)
    n, m = len(fs), len(ft)
    return ot.emd2(torch.full((n,), 1.0 / n, dtype=fs.dtype), torch.full((m,), 1.0 / m, dtype=fs.dtype), cost,
                   numItermax=10_000_000)


def w_not_squared(xs, xt, a=None, b=None, p=2.0):
    return w_pot(xs, xt, a, b, p) ** (1 / p)


def w_euclidean(xs, xt):
    return _emd2(_unif(len(xs)), _unif(len(xt)), cdist(xs, xt))


def w_ignores_weights(xs, xt, a=None, b=None, p=2.0):
    return _emd2(_unif(len(xs)), _unif(len(xt)), cdist(xs, xt) ** p)


def w_sinkhorn(xs, xt, a=None, b=None, p=2.0):
    return float(ot.sinkhorn2(_w(a, len(xs)), _w(b, len(xt)), cdist(xs, xt) ** p, 1.0, numItermax=20_000,
                              stopThr=1e-12))


def w_expanded_float32(fs, ft):
    """|x|^2 + |y|^2 - 2 x.y in float32: cancels for close points."""
    cost = (fs ** 2).sum(1)[:, None] + (ft ** 2).sum(1)[None, :] - 2 * fs @ ft.T
    n, m = len(fs), len(ft)
    return ot.emd2(torch.full((n,), 1.0 / n, dtype=fs.dtype), torch.full((m,), 1.0 / m, dtype=fs.dtype),
                   cost.clamp(min=0), numItermax=10_000_000)


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


def cc_prior_pot(xs, xt, ys, p=2.0):
    """Correct (params weights='prior'): a loop over classes with POT."""
    return _cc(xs, xt, ys, p, "prior")


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


def sinkhorn_pot(xs, xt, a=None, b=None, p=2.0, epsilon=0.1):
    """Correct: POT's plan, plus the entropy term."""
    return _entropic_pot(xs, xt, a, b, p, epsilon)


def sinkhorn_plan_cost(xs, xt, a=None, b=None, p=2.0, epsilon=0.1):
    return float(ot.sinkhorn2(_w(a, len(xs)), _w(b, len(xt)), cdist(xs, xt) ** p, epsilon, method="sinkhorn_log",
                              numItermax=50_000, stopThr=1e-12))


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


def mmd_unbiased_ok(x, y):
    """Correct (params kernel gaussian, bandwidth mean, estimator unbiased)."""
    return mmd_gauss(x, y, unbiased=True)


def mmd_biased_claimed_unbiased(x, y):
    return mmd_gauss(x, y, unbiased=False)


def mmd_unbiased_claimed_biased(x, y):
    return mmd_gauss(x, y, unbiased=True)


def mmd_no_factor_two(x, y):
    return mmd_gauss(x, y, factor=1.0)


def mmd_not_detached(x, y):
    return mmd_gauss(x, y, detach=False)


# ------------------------------------------------------------------------------------- Hinton KD

def kd_hinton(logits_student, logits_teacher, T=1.0):
    """Correct: F.kl_div with log_target, batchmean, times T^2."""
    return F.kl_div(F.log_softmax(logits_student / T, 1), F.log_softmax(logits_teacher / T, 1), log_target=True,
                    reduction="batchmean") * T * T


def kd_numpy_reverse(y_s, y_t, temperature=1.0):
    """Correct (params direction='student_teacher'): NumPy, scipy's log_softmax."""
    ls, lt = log_softmax(y_s / temperature, 1), log_softmax(y_t / temperature, 1)
    return float(temperature ** 2 * np.sum(np.exp(ls) * (ls - lt)) / len(y_s))


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


MMD_U = {"kernel": "gaussian", "bandwidth": "mean", "estimator": "unbiased"}
MMD_V = {"kernel": "gaussian", "bandwidth": "mean", "estimator": "biased"}

CASES = [
    # correct implementations, written differently from ours
    Case("pot_emd2_cdist", "wasserstein", w_pot, True),
    Case("pot_emd2_torch", "wasserstein", w_pot_torch, True),
    Case("class_loop_pot_prior", "class_conditional_wasserstein", cc_prior_pot, True, params={"weights": "prior"}),
    Case("pot_sinkhorn_plus_entropy", "sinkhorn", sinkhorn_pot, True),
    Case("diag_gaussian_w2_torch", "gaussian_wasserstein", gw_diag, True, params={"covariance": "diag"}),
    Case("diag_gaussian_kl_expm1", "gaussian_kl", gkl_diag, True, params={"covariance": "diag"}),
    Case("mmd_unbiased_torch", "mmd", mmd_unbiased_ok, True, params=MMD_U),
    Case("kl_div_batchmean_T2", "hinton_kd", kd_hinton, True),
    Case("numpy_kd_reverse", "hinton_kd", kd_numpy_reverse, True, params={"direction": "student_teacher"}),
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
    Case("sinkhorn_plan_cost", "sinkhorn", sinkhorn_plan_cost, False, "plan_cost", bug="POT's sinkhorn2 value"),
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
    Case("biased_as_unbiased", "mmd", mmd_biased_claimed_unbiased, False, "estimator=biased", params=MMD_U,
         bug="V-statistic passed off as unbiased"),
    Case("unbiased_as_biased", "mmd", mmd_unbiased_claimed_biased, False, "estimator=unbiased", params=MMD_V,
         bug="U-statistic passed off as biased"),
    Case("bandwidth_no_factor_2", "mmd", mmd_no_factor_two, False, "bandwidth_exp(-d2/s2)", params=MMD_V,
         bug="exp(-d^2 / s^2)"),
    Case("bandwidth_not_detached", "mmd", mmd_not_detached, False, "gradient", params=MMD_V,
         bug="gradient through the bandwidth rule, detach claimed"),
    Case("kd_missing_T2", "hinton_kd", kd_missing_t2, False, "missing_T2", bug="no T^2"),
    Case("kd_reverse_kl", "hinton_kd", kd_reverse, False, "direction=student_teacher",
         bug="KL(student || teacher) (the paper's code)"),
    Case("kd_batch_sum", "hinton_kd", kd_batch_sum, False, "batch_sum", bug="reduction='sum'"),
]


def evaluate(case: Case, max_examples: int = MAX_EXAMPLES) -> dict:
    """Run ``check`` on one case: did it flag it, with which diagnosis."""
    start = time.perf_counter()
    row = {"name": case.name, "metric": case.metric, "correct": case.correct, "bug": case.bug,
           "expected": case.expect, "flagged": False, "diagnosis": None, "matches": [], "diagnosed": None}
    try:
        report = check(case.fn, case.metric, params=case.params, max_examples=max_examples, **case.options)
        row["report"] = str(report)
    except MismatchError as err:
        d = err.diagnosis
        row.update(flagged=True, diagnosis=d.message, diagnosis_kind=d.kind, failure_kind=err.kind,
                   matches=[n for n, _ in d.matches], report=str(err))
        if case.expect == "gradient":
            row["diagnosed"] = d.kind == "gradient"
        elif case.expect == "precision":
            row["diagnosed"] = d.kind == "none" and "precision" in d.message
        elif case.expect is not None:
            row["diagnosed"] = case.expect in row["matches"]
    except CheckError as err:
        row.update(flagged=None, diagnosis=f"check could not run: {err}")
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


def main(argv=None) -> int:
    import argparse
    import json
    import os
    import platform
    import subprocess
    import sys

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="verification/results/quick/crosscheck_detection.json")
    parser.add_argument("--examples", type=int, default=MAX_EXAMPLES)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = [evaluate(case, args.examples) for case in CASES]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        rev = None
    import hypothesis

    out = {"table": detection_table(rows), "cases": rows,
           "provenance": {"command": "python tests/mutants.py " + " ".join(argv or sys.argv[1:]), "git_revision": rev,
                          "profile": "quick", "max_examples": args.examples, "hypothesis": "derandomized",
                          "versions": {"python": platform.python_version(), "numpy": np.__version__,
                                       "torch": torch.__version__, "pot": ot.__version__,
                                       "hypothesis": hypothesis.__version__},
                          "device": "cpu", "wall_seconds": round(time.perf_counter() - start, 1)}}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1)
    print(json.dumps(out["table"]))
    for r in rows:
        status = ("PASS" if r["flagged"] is False else "FLAGGED" if r["flagged"] else "ERROR")
        print(f"{r['name']:28s} {r['metric']:40s} {status:8s} diagnosed={r['diagnosed']} {r['seconds']}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
