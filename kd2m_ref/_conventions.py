"""What every layer must agree on: parameter vocabularies, one parameter check per metric, class
splitting, sliced projections and the ε-schedule of Sinkhorn. No solver lives here.

The reference (NumPy) and torch layers both import from this module and never from each other, so the
same input gets the same error (a ``ValueError`` naming the argument) in every layer. Array checks
(shape, dtype, NaN, weights, labels) are in :mod:`kd2m_ref._checks`.
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np

from ._checks import as_array, check_hard_labels

# ----------------------------------------------------------------------------------- vocabularies

LABEL_COSTS = ("onehot", "soft", "cross_entropy")
CLASS_WEIGHTS = ("uniform", "prior", "sum")
KERNELS = ("gaussian", "laplacian", "linear", "polynomial")
SHIFT_INVARIANT = ("gaussian", "laplacian")
MMD_ESTIMATORS = ("biased", "unbiased")
BANDWIDTH_RULES = ("mean", "median")
SAMPLE_NORMALIZATIONS = ("l2", "none")
GAUSSIAN_ESTIMATORS = ("mle", "unbiased")
COVARIANCES = ("full", "diag")
GAUSSIAN_DIRECTIONS = ("student_teacher", "teacher_student")
KD_DIRECTIONS = ("teacher_student", "student_teacher")
SINKHORN_VALUES = ("ot_eps", "plan_cost", "dual")
HISTOGRAM_INPUTS = ("logits", "probabilities")

SINGULAR_HINT = ("the KL divergence between Gaussians needs nonsingular covariances (batch size n > d "
                 "features, no constant or collinear features); pass eps > 0 to add eps * I (a ridge)")


class SinkhornNotConverged(RuntimeWarning):
    """Sinkhorn reached ``max_iter`` before converging; the value returned is then an upper bound of the
    entropic OT cost, the cost of a feasible plan (see :mod:`kd2m_ref.reference.sinkhorn`).

    Examples
    --------
    Turn the warning into an error while testing, so an unconverged value cannot pass unnoticed:

    >>> import warnings
    >>> import numpy as np
    >>> from kd2m_ref.reference import SinkhornNotConverged, sinkhorn
    >>> xs, xt = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", SinkhornNotConverged)
    ...     try:
    ...         sinkhorn(xs, xt, epsilon=0.5, max_iter=2)
    ...     except SinkhornNotConverged as warning:
    ...         print("max_iter=2" in str(warning))
    True
    """


# ------------------------------------------------------------------------------- scalar parameters

def check_choice(value, name: str, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}; got {value!r}")
    return value


def check_number(value, name: str) -> float:
    """A real number (int or float, not bool, not a string or tensor of several entries)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if getattr(value, "ndim", None) == 0 and not isinstance(value, (str, bytes)):  # 0-d array/tensor
            return check_number(value.item(), name)
        raise ValueError(f"{name} must be a real number; got {value!r} ({type(value).__name__})")
    return float(value)


def check_positive(value, name: str, *, strict: bool = True) -> float:
    value = check_number(value, name)
    ok = value > 0 if strict else value >= 0
    if not (math.isfinite(value) and ok):
        raise ValueError(f"{name} must be a finite {'positive' if strict else 'non-negative'} number; got {value!r}")
    return value


def check_int(value, name: str, *, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (a float with an integer value is accepted; bool and 2.5 are not)."""
    number = check_number(value, name)
    if not number.is_integer() or number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(number)


def check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_p(p) -> float:
    """Ground-cost exponent: finite and >= 1 (W_p is a metric only for p >= 1)."""
    p = check_positive(p, "p")
    if p < 1:
        raise ValueError(f"p must be >= 1 for W_p to be a metric; got {p}")
    return p


# ------------------------------------------------------------------------- one check per metric key

def check_wasserstein_params(p=2.0):
    check_p(p)


def check_class_conditional_wasserstein_params(p=2.0, weights="uniform"):
    check_p(p)
    check_choice(weights, "weights", CLASS_WEIGHTS)


def check_joint_wasserstein_params(p=2.0, beta=1.0, label_cost="onehot", num_classes=None):
    check_p(p)
    check_positive(beta, "beta", strict=False)
    check_choice(label_cost, "label_cost", LABEL_COSTS)
    if num_classes is not None:
        check_int(num_classes, "num_classes", minimum=1)


def check_sinkhorn_params(p=2.0, epsilon=0.1, max_iter=1000, tol=1e-9, relative_epsilon=False, value="ot_eps"):
    check_p(p)
    check_positive(epsilon, "epsilon")
    check_int(max_iter, "max_iter")
    check_positive(tol, "tol")
    check_bool(relative_epsilon, "relative_epsilon")
    check_choice(value, "value", SINKHORN_VALUES)


def check_sinkhorn_divergence_params(p=2.0, epsilon=0.1, max_iter=1000, tol=1e-9, relative_epsilon=False):
    check_sinkhorn_params(p, epsilon, max_iter, tol, relative_epsilon)


def check_histogram_ot_params(cost=None, inputs="logits", temperature=1.0, epsilon=0.0, value="ot_eps", n_iter=None,
                              max_iter=1000, tol=1e-9):
    """The cost matrix is checked with the inputs (its shape depends on them)."""
    check_choice(inputs, "inputs", HISTOGRAM_INPUTS)
    check_positive(temperature, "temperature")
    check_positive(epsilon, "epsilon", strict=False)
    check_choice(value, "value", SINKHORN_VALUES)
    if n_iter is not None:
        check_int(n_iter, "n_iter")
    if not epsilon > 0 and (n_iter is not None or value != "ot_eps"):
        raise ValueError(f"epsilon=0 is exact OT: n_iter and value apply to entropic OT (epsilon > 0); got "
                         f"n_iter={n_iter!r}, value={value!r}")
    check_int(max_iter, "max_iter")
    check_positive(tol, "tol")


def check_sliced_wasserstein_params(p=2.0, n_projections=50, seed=0):
    check_p(p)
    check_int(n_projections, "n_projections")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")


def check_mmd_params(kernel="gaussian", bandwidth="mean", estimator="biased", degree=2, offset=1.0,
                     detach_bandwidth=True):
    check_choice(kernel, "kernel", KERNELS)
    check_choice(estimator, "estimator", MMD_ESTIMATORS)
    if isinstance(bandwidth, str):
        check_choice(bandwidth, "bandwidth", BANDWIDTH_RULES)
    else:
        try:
            check_positive(bandwidth, "bandwidth")
        except ValueError:
            raise ValueError(f"bandwidth must be a finite positive number or one of {list(BANDWIDTH_RULES)}; "
                             f"got {bandwidth!r}") from None
    check_int(degree, "degree")
    check_positive(offset, "offset", strict=False)
    check_bool(detach_bandwidth, "detach_bandwidth")


def check_set_mmd_params(kernel="polynomial", bandwidth="mean", estimator="biased", degree=2, offset=0.0,
                         normalize="l2", detach_bandwidth=True):
    check_mmd_params(kernel, bandwidth, estimator, degree, offset, detach_bandwidth)
    check_choice(normalize, "normalize", SAMPLE_NORMALIZATIONS)


def check_hinton_kd_params(temperature=1.0, direction="teacher_student"):
    check_positive(temperature, "temperature")
    check_choice(direction, "direction", KD_DIRECTIONS)


def check_gaussian_params(covariance="full", estimator="mle", eps=0.0):
    check_choice(covariance, "covariance", COVARIANCES)
    check_choice(estimator, "estimator", GAUSSIAN_ESTIMATORS)
    check_positive(eps, "eps", strict=False)


def check_gaussian_kl_params(covariance="full", estimator="mle", eps=0.0, direction="student_teacher"):
    check_gaussian_params(covariance, estimator, eps)
    check_choice(direction, "direction", GAUSSIAN_DIRECTIONS)


def check_gaussian_wasserstein_params(covariance="full", estimator="mle", eps=0.0, mean_weight=1.0):
    check_gaussian_params(covariance, estimator, eps)
    check_positive(mean_weight, "mean_weight", strict=False)


def check_grid(grid) -> tuple[int, int]:
    """A spatial grid: an integer g >= 1 (g x g cells) or a pair (gh, gw) of them; returns (gh, gw)."""
    pair = tuple(grid) if isinstance(grid, (tuple, list)) else (grid, grid)
    try:
        if len(pair) != 2:
            raise ValueError
        return check_int(pair[0], "grid"), check_int(pair[1], "grid")
    except ValueError:
        raise ValueError(f"grid must be an integer >= 1 or a pair (gh, gw) of them; got {grid!r}") from None


def check_grid_gaussian_wasserstein_params(grid=1, mean_weight=1.0, covariance="diag", estimator="unbiased",
                                           eps=1e-5):
    check_grid(grid)
    check_gaussian_wasserstein_params(covariance, estimator, eps, mean_weight)


def grid_cells(height: int, width: int, grid, estimator: str = "mle") -> list[tuple[slice, slice]]:
    """(rows, columns) slices of the cells of a gh x gw ``grid`` over height x width maps, row-major, with
    adaptive-pooling boundaries: cell i spans floor(i H / gh) .. ceil((i + 1) H / gh) (same for columns),
    so cells overlap when gh does not divide H. ValueError naming ``grid`` when a side has more cells than
    pixels, or when ``estimator="unbiased"`` meets a cell of one pixel (its variance is 0/0)."""
    gh, gw = check_grid(grid)
    for g, size, side in ((gh, height, "height"), (gw, width, "width")):
        if g > size:
            raise ValueError(f"grid {grid!r} has {g} cells along the {side} but the feature maps have {side} "
                             f"{size}: at most one cell per pixel")
    rows = [slice(i * height // gh, -(-(i + 1) * height // gh)) for i in range(gh)]
    cols = [slice(j * width // gw, -(-(j + 1) * width // gw)) for j in range(gw)]
    if estimator == "unbiased" and min(r.stop - r.start for r in rows) * min(c.stop - c.start for c in cols) < 2:
        raise ValueError(f"grid {grid!r} on {height} x {width} feature maps has cells of one pixel: "
                         "estimator='unbiased' needs at least 2 pixels per cell; use a coarser grid or "
                         "estimator='mle'")
    return [(r, c) for r in rows for c in cols]


def check_class_conditional_gaussian_wasserstein_params(weights="uniform", covariance="full", estimator="mle",
                                                        eps=0.0):
    check_choice(weights, "weights", CLASS_WEIGHTS)
    check_gaussian_params(covariance, estimator, eps)


def check_class_conditional_gaussian_kl_params(weights="uniform", covariance="full", estimator="mle", eps=0.0,
                                               direction="student_teacher"):
    check_choice(weights, "weights", CLASS_WEIGHTS)
    check_gaussian_kl_params(covariance, estimator, eps, direction)


#: Metric key -> its parameter check (keywords with the metric's defaults; sample weights excluded).
PARAM_CHECKS = {
    "wasserstein": check_wasserstein_params,
    "class_conditional_wasserstein": check_class_conditional_wasserstein_params,
    "joint_wasserstein": check_joint_wasserstein_params,
    "sinkhorn": check_sinkhorn_params,
    "sinkhorn_divergence": check_sinkhorn_divergence_params,
    "histogram_ot": check_histogram_ot_params,
    "sliced_wasserstein": check_sliced_wasserstein_params,
    "mmd": check_mmd_params,
    "set_mmd": check_set_mmd_params,
    "hinton_kd": check_hinton_kd_params,
    "gaussian_wasserstein": check_gaussian_wasserstein_params,
    "grid_gaussian_wasserstein": check_grid_gaussian_wasserstein_params,
    "gaussian_kl": check_gaussian_kl_params,
    "class_conditional_gaussian_wasserstein": check_class_conditional_gaussian_wasserstein_params,
    "class_conditional_gaussian_kl": check_class_conditional_gaussian_kl_params,
}


def check_params(key: str, **params) -> None:
    """Validate the keyword parameters of metric ``key`` (sample weights ``a``/``b`` are checked with
    the samples); ValueError naming the argument."""
    if key not in PARAM_CHECKS:
        raise ValueError(f"unknown metric {key!r}; keys: {sorted(PARAM_CHECKS)}")
    check = PARAM_CHECKS[key]
    known = set(inspect.signature(check).parameters)
    params = {k: v for k, v in params.items() if k not in ("a", "b")}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"{key} has no parameter(s) {unknown}; its parameters: {sorted(known)}")
    check(**params)


def num_classes_of(ys, yt, num_classes=None) -> int:
    """The number of classes K of a label cost: ``num_classes``, or inferred from the labels (the largest
    index + 1, or the width of probability rows); an error when ``num_classes`` is too small for them."""
    needed = max(int(y.max()) + 1 if y.ndim == 1 else int(y.shape[1]) for y in (ys, yt))
    if num_classes is None:
        return needed
    k = check_int(num_classes, "num_classes")
    if k < needed:
        raise ValueError(f"num_classes={k} is too small: the labels need {needed} classes (indices up to "
                         f"{needed - 1}, or probability rows of that width)")
    return k


# ------------------------------------------------------------------------------- Sinkhorn's schedule

GAP_EVERY = 16  #: Sinkhorn iterations between two duality-gap tests of the stopping rule


def epsilon_schedule(max_cost: float, epsilon: float, factor: float = 0.5) -> list[float]:
    """ε-scaling: ``max_cost, max_cost·factor, ...`` while above ``epsilon``, then ``epsilon``."""
    schedule, e = [], float(max_cost)
    while e > epsilon:
        schedule.append(e)
        e *= factor
    return schedule + [float(epsilon)]


_RETURNED = {"ot_eps": "an upper bound of OT_eps that exceeds it by at most {gap}",
             "dual": "the dual objective, a lower bound of OT_eps within {gap} of it",
             "plan_cost": "<P, C> of a feasible (rounded) plan, an upper bound of exact OT (the gap of OT_eps "
                          "is {gap})"}


def warn_unconverged(max_iter: int, error: float, tol: float, gap: float, stacklevel: int = 3,
                     value: str = "ot_eps") -> None:
    """The one :class:`SinkhornNotConverged` message of both layers, with the certified gap."""
    returned = _RETURNED[value].format(gap=f"{max(gap, 0.0):.2e}")
    warnings.warn(
        f"Sinkhorn did not converge in max_iter={max_iter} iterations (marginal error {error:.2e} > tol={tol:.1e}); "
        f"the value returned is {returned}. "
        "Increase max_iter or epsilon (relative_epsilon=True sets epsilon in units of the mean cost)",
        SinkhornNotConverged, stacklevel=stacklevel + 1)


def resolve_epsilon(epsilon: float, mean_cost: float) -> float:
    """A relative ε times the mean cost ``sum_ij a_i b_j C_ij`` (1 when every cost is 0)."""
    return float(epsilon) * (mean_cost if mean_cost > 0 else 1.0)


# -------------------------------------------------------------------------------- sliced projections

def sliced_projections(d: int, n_projections: int, seed: int) -> np.ndarray:
    """``n_projections`` directions uniform on the unit sphere of R^d, reproducible from ``seed``."""
    theta = np.random.default_rng(seed).standard_normal((n_projections, d))
    return theta / np.linalg.norm(theta, axis=1, keepdims=True)


# ---------------------------------------------------------------------------------- class splitting

@dataclass(frozen=True)
class ClassBlock:
    label: int
    index_s: np.ndarray  # rows of xs in this class
    index_t: np.ndarray  # rows of xt in this class
    weight: float


def class_blocks(ys, yt, n_s: int, n_t: int, *, weights: str, a=None, b=None) -> list[ClassBlock]:
    """Class blocks and their weights, for every class-conditional metric ``sum_c w_c D(P_S^c, P_T^c)``.

    ``uniform``: 1/K over the K classes present in the batch; ``prior``: the source-side mass of the
    class, n_c/n (or the sum of ``a`` over the class, normalised); ``sum``: 1 for every class present
    (the paper's code). A class absent from both sides is skipped; a class present on one side only,
    or whose sample weights are all zero on one side, is an error, since its conditional distance is
    undefined. Labels are never differentiated, so they are handled in NumPy whatever the backend.
    """
    check_choice(weights, "weights", CLASS_WEIGHTS)
    ys = check_hard_labels(None if ys is None else as_array(ys, "ys"), "ys", n_s)
    yt = ys if yt is None else check_hard_labels(as_array(yt, "yt"), "yt", n_t)
    ys_np, yt_np = ys.astype(np.int64), yt.astype(np.int64)
    only_s = np.setdiff1d(ys_np, yt_np)
    only_t = np.setdiff1d(yt_np, ys_np)
    if only_s.size or only_t.size:
        side = "ys" if only_s.size else "yt"
        missing = only_s if only_s.size else only_t
        raise ValueError(
            f"class(es) {missing.tolist()} appear in {side} only: each class must be present on both sides "
            "for its conditional distance to be defined"
        )
    classes = np.unique(ys_np)
    mass = np.ones(n_s) if a is None else as_array(a, "a", np.float64)
    mass_t = np.ones(n_t) if b is None else as_array(b, "b", np.float64)
    total = mass.sum()
    blocks = []
    for c in classes:
        idx_s, idx_t = np.flatnonzero(ys_np == c), np.flatnonzero(yt_np == c)
        for name, m, idx in (("a", mass, idx_s), ("b", mass_t, idx_t)):
            if not m[idx].sum() > 0:
                raise ValueError(f"{name} sums to zero on class {int(c)}: every class present needs a positive "
                                 "sample weight on both sides")
        if weights == "uniform":
            w = 1.0 / len(classes)
        elif weights == "prior":
            w = float(mass[idx_s].sum() / total)
        else:
            w = 1.0
        blocks.append(ClassBlock(int(c), idx_s, idx_t, w))
    return blocks
