"""Variants of the kernel MMD: estimator, kernel bandwidth conventions and cross-term slips."""

from __future__ import annotations

import math

import numpy as np

from ...reference.kernel import bandwidth_from_rule, kernel_matrix
from ...reference.wasserstein import cost_matrix
from ._common import NotApplicable, _ref, other_choices, param, with_params

_SHIFT_INVARIANT = ("gaussian", "laplacian")


def _bandwidth_value(ex) -> float:
    """The bandwidth s in use (a rule resolved on the batch)."""
    s = param("mmd", ex, "bandwidth")
    return bandwidth_from_rule(*ex.args, s) if isinstance(s, str) else float(s)


def _gaussian_bandwidth(transform):
    """The Gaussian-kernel MMD with the bandwidth s replaced by ``transform(s)``."""
    def fn(ex):
        if param("mmd", ex, "kernel") != "gaussian":
            raise NotApplicable
        return _ref("mmd", ex, bandwidth=transform(_bandwidth_value(ex)))
    return fn


def _bandwidth_rule_value(rule: str):
    """The MMD with the bandwidth rule ``"mean_off_diagonal"`` (the mean distance, zero diagonal left
    out) or ``"mean_square"`` (s^2 = the mean squared distance) in place of the metric's rule."""
    def fn(ex):
        s = param("mmd", ex, "bandwidth")
        if param("mmd", ex, "kernel") not in _SHIFT_INVARIANT or not isinstance(s, str):
            raise NotApplicable
        xs, xt = ex.args
        blocks = [cost_matrix(u, v, 2) for u, v in ((xs, xs), (xt, xt), (xs, xt))]
        if rule == "mean_off_diagonal":
            if s != "mean":
                raise NotApplicable
            total = sum(np.sqrt(c).sum() for c in blocks)
            count = sum(c.size for c in blocks) - len(xs) - len(xt)
            value = total / count if count else 0.0
        else:  # mean of squared distances as s^2
            value = math.sqrt(sum(c.sum() for c in blocks) / sum(c.size for c in blocks))
        return _ref("mmd", ex, bandwidth=value if value > 0 else 1.0)
    return fn


def _other_rule(rule: str):
    def fn(ex):
        s = param("mmd", ex, "bandwidth")
        if not isinstance(s, str) or s == rule or param("mmd", ex, "kernel") not in _SHIFT_INVARIANT:
            raise NotApplicable
        return _ref("mmd", ex, bandwidth=rule)
    return fn


def _mmd_blocks(ex):
    """The kernel matrices K_SS, K_TT, K_ST of the metric's kernel."""
    kernel = param("mmd", ex, "kernel")
    kw = dict(kernel=kernel, bandwidth=_bandwidth_value(ex) if kernel in _SHIFT_INVARIANT else 1.0,
              degree=param("mmd", ex, "degree"), offset=param("mmd", ex, "offset"))
    xs, xt = ex.args
    return kernel_matrix(xs, xs, **kw), kernel_matrix(xt, xt, **kw), kernel_matrix(xs, xt, **kw)


def _single_cross_term(ex):
    kxx, kyy, kxy = _mmd_blocks(ex)
    n, m = len(kxx), len(kyy)
    if param("mmd", ex, "estimator") == "biased":
        return float(kxx.sum() / n**2 + kyy.sum() / m**2 - kxy.sum() / (n * m))
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - kxy.sum() / (n * m))


def _paired_unbiased(ex):
    """Gretton's paired U-statistic: the cross diagonal k(x_i, y_i) left out as well."""
    kxx, kyy, kxy = _mmd_blocks(ex)
    n = len(kxx)
    if len(kyy) != n or n < 2:
        raise NotApplicable
    off = ~np.eye(n, dtype=bool)
    return float((kxx[off].sum() + kyy[off].sum() - 2 * kxy[off].sum()) / (n * (n - 1)))


mmd = {
    **other_choices("mmd", "estimator", ("biased", "unbiased"),
                    {"biased": "biased V-statistic (the paper's code)",
                     "unbiased": "unbiased U-statistic (i != j)"}.get),
    "not_squared": ("MMD, not squared", lambda ex: math.sqrt(max(_ref("mmd", ex), 0.0))),
    "bandwidth_exp(-d2/s2)": ("Gaussian kernel exp(-||x-y||^2 / s^2) (no factor 2)",
                              _gaussian_bandwidth(lambda s: s / math.sqrt(2))),
    "bandwidth_as_variance": ("Gaussian kernel exp(-||x-y||^2 / (2 s)): s read as the variance",
                              _gaussian_bandwidth(math.sqrt)),
    "bandwidth_as_gamma": ("Gaussian kernel exp(-s ||x-y||^2): s read as gamma (scikit-learn)",
                           _gaussian_bandwidth(lambda s: 1 / math.sqrt(2 * s))),
    "bandwidth_mean_off_diagonal": ("bandwidth: mean pairwise distance without the zero diagonal",
                                    _bandwidth_rule_value("mean_off_diagonal")),
    "bandwidth_root_mean_square": ("bandwidth s with s^2 = the mean squared pairwise distance",
                                   _bandwidth_rule_value("mean_square")),
    "single_cross_term": ("cross term -1/(nm) sum k(x, y) instead of -2/(nm)", _single_cross_term),
    "paired_unbiased": ("unbiased paired form: the cross diagonal k(x_i, y_i) left out too", _paired_unbiased),
    **{f"bandwidth={rule}": (f"bandwidth rule '{rule}'" + (" (the paper's code)" if rule == "mean" else
                                                           " (median heuristic)"), _other_rule(rule))
       for rule in ("mean", "median")},
}


# ------------------------------------------------------------------------------------ per-set MMD (NST)

def _set_parts(ex):
    """The ``mmd`` examples of the normalised set pairs, every parameter resolved."""
    from ..tolerance import set_mmd_error_parts

    return [part for part, _ in set_mmd_error_parts(ex)]


def _drops_teacher_term(ex):
    """The mean over sets of the MMD^2 without its teacher-teacher kernel mean (NST's full_loss=False)."""
    total = 0.0
    for part in _set_parts(ex):
        kyy = _mmd_blocks(part)[1]
        m = len(kyy)
        if param("set_mmd", ex, "estimator") == "biased":
            teacher = kyy.sum() / m**2
        else:
            teacher = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        total += _ref("mmd", part) - teacher
    return total / len(ex.args[0])


def _batch_sum(ex):
    b = len(ex.args[0])
    if b == 1:
        raise NotApplicable
    return b * _ref("set_mmd", ex)


def _one_set(ex):
    """The MMD^2 of the whole batch pooled into one set of B·n (resp. B·m) samples."""
    xs, xt = ex.args
    if len(xs) == 1:
        raise NotApplicable
    return _ref("set_mmd", ex, args=(xs.reshape(1, -1, *xs.shape[2:]), xt.reshape(1, -1, *xt.shape[2:])))


def _polynomial(**changes):
    """The polynomial-kernel metric with ``changes`` (not applicable to another kernel or at these values)."""
    def fn(ex):
        if param("set_mmd", ex, "kernel") != "polynomial":
            raise NotApplicable
        return with_params("set_mmd", **changes)(ex)
    return fn


set_mmd = {
    **other_choices("set_mmd", "normalize", ("l2", "none"),
                    {"l2": "each sample divided by its Euclidean norm (NST's F.normalize)",
                     "none": "no normalisation of the samples"}.get),
    **other_choices("set_mmd", "estimator", ("biased", "unbiased"),
                    {"biased": "biased V-statistic (NST's code)", "unbiased": "unbiased U-statistic (i != j)"}.get),
    "drops_teacher_term": ("teacher-teacher kernel mean left out (NST's full_loss=False; can be negative)",
                           _drops_teacher_term),
    "batch_sum": ("sum over the sets instead of the mean", _batch_sum),
    "one_set": ("the whole batch pooled into one set of B·n samples", _one_set),
    "offset=1": ("polynomial kernel (x.y + 1)^degree", _polynomial(offset=1.0)),
    **{f"degree={q}": (f"polynomial kernel of degree {q}", _polynomial(degree=q)) for q in (1, 2, 3)},
}
