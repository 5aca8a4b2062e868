"""Variants of the Gaussian metrics: Bures-Wasserstein and KL between fitted Gaussians, marginal or
class-conditional."""

from __future__ import annotations

import numpy as np

from ..._conventions import class_blocks
from ...reference.gaussian import fit_gaussian
from ._common import _ref, as_metric, class_weight_variants, ignores_weights, other_choices, param, root, scaled

_EST = {"mle": "covariance estimator 'mle' (1/n)", "unbiased": "covariance estimator 'unbiased' (1/(n-1), torch.cov)"}
_COV = {"full": "full covariance", "diag": "diagonal covariance (variances only; the paper's code)"}
_DIR = {"student_teacher": "KL(student || teacher) (the paper's code)",
        "teacher_student": "KL(teacher || student) (the direction swapped)"}


def _ridge(key: str, extra: float, desc: str):
    """The metric with ``extra`` added to the covariance ridge ``eps``."""
    def fn(ex):
        return _ref(key, ex, eps=float(param(key, ex, "eps")) + extra)
    return desc, fn


def _wmean(x, w, index):
    if w is None:
        return x.mean(0)
    w = np.asarray(w, float)[index]
    return (w / w.sum()) @ x


def _centred(key: str):
    """The metric of the centred clouds (per class for class-conditional keys): the mean term left out."""
    def fn(ex):
        xs, xt = ex.args
        if "ys" in ex.kwargs:
            xs, xt = xs.copy(), xt.copy()
            for blk in class_blocks(ex.kwargs["ys"], ex.kwargs.get("yt"), len(xs), len(xt), weights="sum",
                                    a=ex.kwargs.get("a")):
                xs[blk.index_s] -= _wmean(xs[blk.index_s], ex.kwargs.get("a"), blk.index_s)
                xt[blk.index_t] -= _wmean(xt[blk.index_t], ex.kwargs.get("b"), blk.index_t)
        else:
            xs = xs - _wmean(xs, ex.kwargs.get("a"), slice(None))
            xt = xt - _wmean(xt, ex.kwargs.get("b"), slice(None))
        return _ref(key, ex, args=(xs, xt))
    return fn


def _variance_not_std(ex):
    """Diagonal W2 with variances in place of standard deviations: ||dmu||^2 + ||var_S - var_T||^2."""
    kw = {k: param("gaussian_wasserstein", ex, k) for k in ("estimator", "eps")}
    (ms, vs), (mt, vt) = (fit_gaussian(x, a=w, covariance="diag", **kw)
                          for x, w in zip(ex.args, (ex.kwargs.get("a"), ex.kwargs.get("b"))))
    return float(np.sum((ms - mt) ** 2) + np.sum((vs - vt) ** 2))


def _jeffreys(key: str):
    """KL(S || T) + KL(T || S)."""
    def fn(ex):
        return _ref(key, ex, direction="student_teacher") + _ref(key, ex, direction="teacher_student")
    return fn


def _gaussian_common(key: str) -> dict:
    return {
        **other_choices(key, "estimator", ("mle", "unbiased"), _EST.get),
        **other_choices(key, "covariance", ("full", "diag"), _COV.get),
        "ignores_weights": ("sample weights a, b ignored (uniform)", ignores_weights(key)),
        "no_mean_term": ("the mean term left out (covariances only)", _centred(key)),
    }


gaussian_wasserstein = {
    "not_squared": ("W2 (POT's bures_*), not squared", root("gaussian_wasserstein", lambda ex: 2.0)),
    **_gaussian_common("gaussian_wasserstein"),
    "pot_ridge_1e-6": _ridge("gaussian_wasserstein", 1e-6,
                             "POT's empirical covariance: 1/n plus reg = 1e-6 on the diagonal"),
    "wkd_ridge_1e-5": _ridge("gaussian_wasserstein", 1e-5, "sigma = sqrt(var + 1e-5) (WKD-F's stabiliser)"),
    "variance_not_std": ("diagonal ||var_S - var_T||^2 in place of ||sigma_S - sigma_T||^2", _variance_not_std),
}

gaussian_kl = {
    **other_choices("gaussian_kl", "direction", ("student_teacher", "teacher_student"), _DIR.get),
    **_gaussian_common("gaussian_kl"),
    "missing_half": ("the factor 1/2 left out (twice the KL)", scaled("gaussian_kl", lambda ex: 2.0)),
    "jeffreys": ("symmetrised KL(S || T) + KL(T || S)", _jeffreys("gaussian_kl")),
    "ridge_1e-6": _ridge("gaussian_kl", 1e-6, "covariances with a ridge 1e-6 I"),
}

class_conditional_gaussian_wasserstein = {
    **class_weight_variants("class_conditional_gaussian_wasserstein"),
    "marginal": ("labels ignored: one Gaussian per side", as_metric("gaussian_wasserstein", drop=("weights",))),
    **_gaussian_common("class_conditional_gaussian_wasserstein"),
}

class_conditional_gaussian_kl = {
    **class_weight_variants("class_conditional_gaussian_kl"),
    **other_choices("class_conditional_gaussian_kl", "direction", ("student_teacher", "teacher_student"), _DIR.get),
    "marginal": ("labels ignored: one Gaussian per side", as_metric("gaussian_kl", drop=("weights",))),
    **_gaussian_common("class_conditional_gaussian_kl"),
    "missing_half": ("the factor 1/2 left out", scaled("class_conditional_gaussian_kl", lambda ex: 2.0)),
}
