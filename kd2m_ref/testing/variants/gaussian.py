"""Variants of the Gaussian metrics: Bures-Wasserstein and KL between fitted Gaussians, marginal or
class-conditional."""

from __future__ import annotations

import numpy as np

from ..._conventions import class_blocks, grid_cells
from ...reference.gaussian import fit_gaussian
from ._common import (NotApplicable, _ref, as_metric, class_weight_variants, ignores_weights, other_choices, param,
                      root, scaled, with_params)

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
    """Diagonal W2 with variances in place of standard deviations: w ||dmu||^2 + ||var_S - var_T||^2."""
    kw = {k: param("gaussian_wasserstein", ex, k) for k in ("estimator", "eps")}
    (ms, vs), (mt, vt) = (fit_gaussian(x, a=w, covariance="diag", **kw)
                          for x, w in zip(ex.args, (ex.kwargs.get("a"), ex.kwargs.get("b"))))
    return float(param("gaussian_wasserstein", ex, "mean_weight") * np.sum((ms - mt) ** 2) + np.sum((vs - vt) ** 2))


def _grid_variance_not_std(ex):
    """WKD-F with variances in place of standard deviations: the mean over images and cells of
    w ||dmu||^2 + ||var_S - var_T||^2 (eps cancels)."""
    key = "grid_gaussian_wasserstein"
    xs, xt = ex.args
    batch, channels, height, width = xs.shape
    estimator = param(key, ex, "estimator")
    cells = grid_cells(height, width, param(key, ex, "grid"), estimator)
    total = 0.0
    for i in range(batch):
        for rows, cols in cells:
            (ms, vs), (mt, vt) = (fit_gaussian(x[i, :, rows, cols].reshape(channels, -1).T, estimator=estimator,
                                               covariance="diag") for x in (xs, xt))
            total += param(key, ex, "mean_weight") * np.sum((ms - mt) ** 2) + np.sum((vs - vt) ** 2)
    return float(total / (batch * len(cells)))


def _mean_weights(key: str) -> dict:
    """The mean term weighted by 1 (the plain W2: ``mean_weight`` ignored) or by WKD-F's 2 or 4."""
    return {f"mean_weight={w:g}": (f"mean term weighted by {w:g}" + (" (the plain W2: mean_weight ignored)" if w == 1
                                                                     else " (a published WKD-F weight)"),
                                   with_params(key, mean_weight=w)) for w in (1.0, 2.0, 4.0)}


def _weight_on_covariance(key: str):
    """||dmu||^2 + w B^2: the mean weight applied to the covariance term instead of the mean term."""
    def fn(ex):
        w = float(param(key, ex, "mean_weight"))
        if w == 1:
            raise NotApplicable
        cov = _ref(key, ex, mean_weight=0.0)
        return _ref(key, ex, mean_weight=1.0) - cov + w * cov
    return fn


def _mean_term_only(key: str):
    """w ||dmu||^2 alone: the covariance term left out."""
    def fn(ex):
        return _ref(key, ex) - _ref(key, ex, mean_weight=0.0)
    return fn


def _mean_weight_variants(key: str) -> dict:
    return {**_mean_weights(key),
            "mean_weight_on_covariance": ("the mean weight on the covariance term: ||dmu||^2 + w B^2",
                                          _weight_on_covariance(key)),
            "mean_term_only": ("the mean term alone (covariance term left out)", _mean_term_only(key))}


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
    **_mean_weight_variants("gaussian_wasserstein"),
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

_GRID = "grid_gaussian_wasserstein"


def _cells(ex) -> int:
    xs = ex.args[0]
    return len(grid_cells(xs.shape[2], xs.shape[3], param(_GRID, ex, "grid"), param(_GRID, ex, "estimator")))


grid_gaussian_wasserstein = {
    **_mean_weight_variants(_GRID),
    "no_mean_term": ("the mean term left out (standard deviations only)", with_params(_GRID, mean_weight=0.0)),
    "grid=1": ("no grid: one Gaussian per whole feature map", with_params(_GRID, grid=1)),
    **other_choices(_GRID, "estimator", ("mle", "unbiased"), {
        "mle": "biased 1/n variance (torch.var(unbiased=False))",
        "unbiased": "unbiased 1/(n-1) variance (torch.var, WKD-F)"}.get),
    **other_choices(_GRID, "covariance", ("full", "diag"), _COV.get),
    "eps=0": (("no stabiliser, sigma = sqrt(var) (or eps added outside the square root, which cancels in "
               "sigma_S - sigma_T)"), with_params(_GRID, eps=0.0)),
    "batch_sum": ("sum over the images instead of the mean", scaled(_GRID, lambda ex: ex.args[0].shape[0])),
    "cell_sum": ("sum over the grid cells instead of the mean", scaled(_GRID, _cells)),
    "variance_not_std": ("||var_S - var_T||^2 in place of ||sigma_S - sigma_T||^2", _grid_variance_not_std),
}
