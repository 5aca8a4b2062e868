"""Maximum mean discrepancy (MMD^2) between empirical measures, float64.

Kernel matrices come from explicit differences (no ``|x|^2 + |y|^2 - 2x.y`` expansion), and every
block sum is an exactly rounded ``math.fsum``: the value is exactly 0 for equal multisets (a
permutation, duplicated rows in the same proportion), and otherwise its absolute error is a few
units of roundoff times the kernel mass ``sum |w_i w_j k_ij|``. MMD^2 is a difference of such sums,
so for nearly equal measures its *relative* accuracy is limited by that cancellation, as in any
fixed precision; :func:`mmd_condition` returns the factor (see ``tests/reference``).
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_array, check_points, check_sets
from .._conventions import BANDWIDTH_RULES, SHIFT_INVARIANT, check_choice, check_mmd_params, check_set_mmd_params
from .wasserstein import cost_matrix


def _rule_value(dists: list[np.ndarray], rule: str, n_z: int) -> float:
    if rule == "mean":
        total = sum(d.size for d in dists)
        return math.fsum(np.concatenate([d.ravel() for d in dists])) / total
    return float(np.median(dists[0][np.triu_indices(n_z, 1)]))


def bandwidth_from_rule(xs, xt, rule: str) -> float:
    r"""The bandwidth :math:`s` chosen by ``rule`` from the pooled sample :math:`Z = X \cup Y`.

    ``"mean"`` (the paper's code): the mean of the :math:`n^2 + m^2 + nm` entries of the distance
    matrices :math:`\|x_i-x_j\|`, :math:`\|y_i-y_j\|`, :math:`\|x_i-y_j\|` (zero diagonals included,
    cross block counted once). ``"median"`` (heuristic of Gretton et al. 2012): the median of
    :math:`\|z_i - z_j\|` over pairs :math:`i < j` of Z (mean of the two middle values for an even
    count). A rule that gives 0 (all points equal; for the median, at least half the pairs equal)
    gives :math:`s = 1`.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference.kernel import bandwidth_from_rule
    >>> xs, xt = np.array([[0.0], [2.0]]), np.array([[1.0], [3.0]])
    >>> round(bandwidth_from_rule(xs, xt, "mean"), 4)  # 14 / 12
    1.1667
    >>> bandwidth_from_rule(xs, xt, "median")
    1.5
    """
    check_choice(rule, "bandwidth", BANDWIDTH_RULES)
    xs, xt = np.asarray(xs, np.float64), np.asarray(xt, np.float64)
    if rule == "mean":
        dists = [np.sqrt(cost_matrix(u, v, 2)) for u, v in ((xs, xs), (xt, xt), (xs, xt))]
        s = _rule_value(dists, rule, 0)
    else:
        z = np.concatenate([xs, xt])
        s = _rule_value([np.sqrt(cost_matrix(z, z, 2))], rule, len(z))
    return s if s > 0 else 1.0


def kernel_matrix(x, y, *, kernel: str = "gaussian", bandwidth: float = 1.0, degree: int = 2,
                  offset: float = 1.0) -> np.ndarray:
    r"""Kernel matrix :math:`k(x_i, y_j)` for a fixed numeric ``bandwidth`` s.

    gaussian :math:`e^{-\|x-y\|^2/(2s^2)}`; laplacian :math:`e^{-\|x-y\|_2/s}` (Euclidean norm;
    scikit-learn's ``laplacian_kernel`` uses the L1 norm); linear :math:`x^\top y`; polynomial
    :math:`(x^\top y + c)^{q}` with ``offset`` c and ``degree`` q (bandwidth ignored).

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference.kernel import kernel_matrix
    >>> x, y = np.array([[0.0]]), np.array([[0.0], [1.0]])
    >>> kernel_matrix(x, y, bandwidth=1.0).round(4).tolist()  # e^(-1/2)
    [[1.0, 0.6065]]
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if kernel in SHIFT_INVARIANT:
        sq = cost_matrix(x, y, 2)
        s = float(bandwidth)
        # distances are divided by s before anything else, so s**2 is never formed: any finite s > 0
        # works (1e-300: 0 off coincident points, 1 on them; 1e300: 1). An overflow of sq / s means
        # ||x-y||^2/s^2 > sq/s > 1.8e308 (s < 1 there), an underflow ||x-y||^2/s^2 < 2.2e-308: the
        # kernel is then 0, resp. 1, exactly as e^{-inf} and e^{-0} give.
        with np.errstate(over="ignore", under="ignore"):
            if kernel == "gaussian":
                return np.exp(-0.5 * (sq / s / s))
            return np.exp(-(np.sqrt(sq) / s))
    gram = x @ y.T
    return gram if kernel == "linear" else (gram + offset) ** int(degree)


def _blocks(xs, xt, kernel, bandwidth, degree, offset):
    if kernel in SHIFT_INVARIANT and isinstance(bandwidth, str):
        bandwidth = bandwidth_from_rule(xs, xt, bandwidth)
    kw = dict(kernel=kernel, bandwidth=float(bandwidth) if kernel in SHIFT_INVARIANT else 1.0,
              degree=degree, offset=offset)
    return kernel_matrix(xs, xs, **kw), kernel_matrix(xt, xt, **kw), kernel_matrix(xs, xt, **kw)


def _off_diagonal(k: np.ndarray) -> np.ndarray:
    return k[~np.eye(len(k), dtype=bool)]


def _weighted_sums(kxx, kyy, kxy, estimator):
    """[(weight, block sum)] of the estimator: V or U statistic."""
    n, m = len(kxx), len(kyy)
    if estimator == "biased":
        return [(1.0 / n**2, math.fsum(kxx.ravel())), (1.0 / m**2, math.fsum(kyy.ravel())),
                (-2.0 / (n * m), math.fsum(kxy.ravel()))]
    return [(1.0 / (n * (n - 1)), math.fsum(_off_diagonal(kxx))), (1.0 / (m * (m - 1)), math.fsum(_off_diagonal(kyy))),
            (-2.0 / (n * m), math.fsum(kxy.ravel()))]


def _inputs(xs, xt, kernel, bandwidth, estimator, degree, offset, detach_bandwidth=True):
    check_mmd_params(kernel, bandwidth, estimator, degree, offset, detach_bandwidth)
    rows = 2 if estimator == "unbiased" else 1
    xs = check_points(as_array(xs, "xs"), "xs", min_rows=rows)
    xt = check_points(as_array(xt, "xt"), "xt", dim=xs.shape[1], min_rows=rows)
    return xs.astype(np.float64), xt.astype(np.float64)


def mmd(xs, xt, *, kernel: str = "gaussian", bandwidth: float | str = "mean", estimator: str = "biased",
        degree: int = 2, offset: float = 1.0, detach_bandwidth: bool = True) -> float:
    r"""Squared maximum mean discrepancy between the empirical measures of ``xs`` and ``xt``.

    .. math::
        \widehat{\mathrm{MMD}}^2_V = \tfrac{1}{n^2}\sum_{ij}k(x_i,x_j) + \tfrac{1}{m^2}\sum_{ij}k(y_i,y_j)
        - \tfrac{2}{nm}\sum_{ij}k(x_i,y_j)

    ``estimator="biased"`` (default, the paper's code): the V-statistic above, the exact MMD^2 of the
    two discrete measures, always >= 0. ``"unbiased"``: the U-statistic, with the within-sample sums
    over :math:`i \ne j` divided by :math:`n(n-1)`, :math:`m(m-1)`; unbiased for the population
    MMD^2, can be negative, needs n, m >= 2.

    Kernels (see :func:`~kd2m_ref.reference.kernel.kernel_matrix`): ``gaussian`` (default), ``laplacian``, ``linear``,
    ``polynomial`` (``degree``, ``offset``). ``bandwidth`` of the shift-invariant kernels: a positive
    number s, or a rule evaluated on the batch (see :func:`~kd2m_ref.reference.kernel.bandwidth_from_rule`): ``"mean"`` (default,
    the paper's code) or ``"median"``. ``detach_bandwidth`` only matters to the torch layer (whether
    gradients flow through a rule's s; default True, as the paper's code); the value is the same.
    Returns the **square** MMD^2 (not MMD). Samples are uniformly weighted (no ``a``/``b``).

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import mmd
    >>> xs, xt = np.array([[0.0], [2.0]]), np.array([[1.0], [3.0]])
    >>> mmd(xs, xt, kernel="linear")  # the squared gap of the means
    1.0
    >>> round(mmd(xs, xt), 4), round(mmd(xs, xt, estimator="unbiased"), 4)
    (0.1729, -0.5971)
    """
    xs, xt = _inputs(xs, xt, kernel, bandwidth, estimator, degree, offset, detach_bandwidth)
    terms = _weighted_sums(*_blocks(xs, xt, kernel, bandwidth, degree, offset), estimator)
    return float(sum(w * s for w, s in terms))


def mmd_condition(xs, xt, *, kernel: str = "gaussian", bandwidth: float | str = "mean",
                  estimator: str = "biased", degree: int = 2, offset: float = 1.0,
                  detach_bandwidth: bool = True) -> tuple[float, float]:
    r"""``(value, mass)``: the MMD^2 and the kernel mass :math:`\sum_{\rm blocks}|w|\sum_{ij}|k_{ij}|` that
    bounds its rounding error (absolute error <= c·u·mass). ``mass / |value|`` is the condition number.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference.kernel import mmd_condition
    >>> xs, xt = np.array([[0.0], [2.0]]), np.array([[1.0], [3.0]])
    >>> mmd_condition(xs, xt, kernel="linear")  # |error| <= c u 9
    (1.0, 9.0)
    """
    xs, xt = _inputs(xs, xt, kernel, bandwidth, estimator, degree, offset, detach_bandwidth)
    kxx, kyy, kxy = _blocks(xs, xt, kernel, bandwidth, degree, offset)
    value = sum(w * s for w, s in _weighted_sums(kxx, kyy, kxy, estimator))
    mass = sum(abs(w) * s for w, s in _weighted_sums(np.abs(kxx), np.abs(kyy), np.abs(kxy), estimator))
    return float(value), float(mass)


def normalize_samples(x, normalize: str = "l2") -> np.ndarray:
    r"""Each sample (a vector along the last axis) divided by its Euclidean norm (``"l2"``), or unchanged
    (``"none"``).

    A zero sample (a dead channel) stays zero, as with ``F.normalize``; every other sample is divided by
    its exact norm (no epsilon). The norm is taken of :math:`x / \max_i |x_i|`, so no square overflows or
    underflows, and scaling a sample by a power of two changes no bit of the result.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference.kernel import normalize_samples
    >>> normalize_samples(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    x = np.asarray(x, np.float64)
    if normalize == "none":
        return x
    scale = np.abs(x).max(-1, keepdims=True)
    x = x / np.where(scale > 0, scale, 1.0)
    norm = np.sqrt(np.sum(x * x, -1, keepdims=True))
    return x / np.where(norm > 0, norm, 1.0)


def set_inputs(xs, xt, *, kernel: str = "polynomial", bandwidth: float | str = "mean", estimator: str = "biased",
               degree: int = 2, offset: float = 0.0, normalize: str = "l2", detach_bandwidth: bool = True):
    """Validated ``(xs, xt)`` of :func:`set_mmd` as float64 (B, n, d) and (B, m, d) arrays, normalised."""
    check_set_mmd_params(kernel, bandwidth, estimator, degree, offset, normalize, detach_bandwidth)
    rows = 2 if estimator == "unbiased" else 1
    xs = check_sets(as_array(xs, "xs"), "xs", min_rows=rows)
    xt = check_sets(as_array(xt, "xt"), "xt", like=xs, min_rows=rows)
    return normalize_samples(xs, normalize), normalize_samples(xt, normalize)


def set_mmd(xs, xt, *, kernel: str = "polynomial", bandwidth: float | str = "mean", estimator: str = "biased",
            degree: int = 2, offset: float = 0.0, normalize: str = "l2", detach_bandwidth: bool = True) -> float:
    r"""MMD^2 between the b-th student set and the b-th teacher set, averaged over the B sets of a batch.

    .. math::
        \frac1B\sum_{b=1}^B \widehat{\mathrm{MMD}}^2\big(\{\hat x_{bi}\}_{i\le n}, \{\hat y_{bj}\}_{j\le m}\big),
        \qquad \hat x = x / \|x\|_2

    ``xs`` ``(B, n, *sample_shape)`` and ``xt`` ``(B, m, *sample_shape)``: B sets of n (resp. m) samples, the
    trailing dimensions flattened into d features. A (B, C, H, W) feature map is B sets of C channel maps
    in :math:`\mathbb R^{HW}` (Neural Style Transfer distillation, NST); a (B, n, d) array is B sets of n points. n != m
    (student and teacher channel counts) is allowed; B and d must agree.

    ``normalize="l2"`` (default, NST) divides each sample by its Euclidean norm (a zero sample stays zero;
    see ``normalize_samples``), ``"none"`` keeps it. The per-set MMD^2 is :func:`mmd` with its
    parameters; a bandwidth rule is evaluated per set, on the normalised samples. The defaults are NST's:
    the polynomial kernel :math:`(x^\top y)^2` (``degree=2``, ``offset=0``) and the biased V-statistic,
    so with (B, C, H, W) maps the value is the published ``k_tt.mean() + k_ss.mean() - 2 k_st.mean()``
    over the (B, C, C) kernel tensors.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import set_mmd
    >>> xs = np.array([[[1.0, 0.0]], [[0.0, 3.0]]])  # 2 sets of 1 sample
    >>> xt = np.array([[[0.0, 2.0]], [[0.0, 1.0]]])
    >>> set_mmd(xs, xt)  # normalised samples: (2 + 0) / 2
    1.0
    """
    kw = dict(kernel=kernel, bandwidth=bandwidth, estimator=estimator, degree=degree, offset=offset)
    xs, xt = set_inputs(xs, xt, normalize=normalize, detach_bandwidth=detach_bandwidth, **kw)
    return math.fsum(mmd(u, v, **kw) for u, v in zip(xs, xt)) / len(xs)
