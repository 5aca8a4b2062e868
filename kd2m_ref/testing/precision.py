"""The precision floor: how far a *correct, straightforward* implementation may be from the reference.

The tolerance models of :mod:`kd2m_ref.testing.tolerance` bound what a reference-grade computation
makes (explicit differences, exact sums, a factor-based Bures); textbook code loses more (an
expanded ``|x|^2 + |y|^2 - 2 x.y`` cost, ``sqrtm`` of a singular covariance, a one-pass variance,
``F.kl_div`` in float32), and that is a precision matter, not a wrong convention. The floor is::

    floor = c * u * S  +  c_sqrt * S * sum_lambda min(sqrt(u), u / (2 sqrt(lambda)))  +  t * S

with u the unit roundoff of the dtype and S a scale computed from the inputs alone (not from the
reference value, which is 0 at equality)::

    OT family     S = (R_S + R_T)^p (R the largest row norm), u^min(1, p/2) in place of u,
                  times the total class weight, plus beta times the largest label cost;
                  sliced: times 1 + log2(d + 1)
    Sinkhorn      the OT scale, plus the solver allowance t = 1e-6
    Gaussian W2   S = tr S_S + tr S_T + max(1, w)(|mu_S|^2 + |mu_T|^2), w the mean weight; the
                  square-root term over the eigenvalues of S_S / S, S_T / S and S_S^1/2 S_T S_S^1/2 / S^2;
                  grid (feature maps): the mean over images and cells
    Gaussian KL   S = d (kappa_S + kappa_T) + (|mu_S|^2 + |mu_T|^2) / lambda_min
    MMD           S = kernel error mass x (1 + D^2 / s^2), D = R_S + R_T, s the bandwidth;
                  Laplacian kernel or a bandwidth rule: also the sqrt(u) term
    set MMD       the mean over the sets of the MMD scales of the normalised sets, plus the
                  normalisation's error mass (tolerance.set_mmd_error_parts) in the u term
    Hinton KD     S = T^2 (2 L + (L + C + 2) G), as in the tight model
    histogram OT  S = max C (2 K + 2 + softmax and kernel terms), as in the tolerance model; plus the
                  solver allowance t max C (converged) or the reference LP's mass tolerance (exact)

The expanded cost errs by u (R_S + R_T)^2 and its square root by sqrt(u) (R_S + R_T); a matrix square
root of an eigenvalue perturbed by u S by up to sqrt(u S) (the rank-deficient case); a textbook
Sinkhorn stops on a marginal error, not at machine precision, and its gradient may err by sqrt(t)
relative (:func:`gradient_allowance`).

The constants are measured: ``benchmarks/precision_floor.py`` runs the gallery of correct textbook
implementations (``verification/crosscheck/gallery.py``) and records the largest error in units of u S per key and
dtype, also as a fraction of the floor; each constant is set so that this fraction stays below
1 / ``MARGIN`` (the measured fraction times the constant times ``MARGIN``, rounded up to a power of
two). ``tests/test_benchmarks.py`` checks the committed measurement against these constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .tolerance import (_fit, _gaussian_blocks, _gaussian_params, _histogram_scale, _mmd_error_mass, hinton_kd_scale,
                        set_mmd_error_parts, unit_roundoff)

#: ``(c, c_sqrt)`` per registry key, the constants of the u and sqrt(u) terms of the floor; set from
#: ``benchmarks/precision_floor.py`` (see the module docstring).
CONSTANTS = {
    "wasserstein": (8.0, 0.0), "class_conditional_wasserstein": (4.0, 0.0), "joint_wasserstein": (4.0, 0.0),
    "sliced_wasserstein": (2.0, 0.0), "sinkhorn": (4.0, 0.0), "sinkhorn_divergence": (4.0, 0.0),
    "gaussian_wasserstein": (32.0, 4.0), "class_conditional_gaussian_wasserstein": (32.0, 4.0),
    "grid_gaussian_wasserstein": (2.0, 0.25),
    "gaussian_kl": (16.0, 0.0), "class_conditional_gaussian_kl": (16.0, 0.0),
    "mmd": (8.0, 1.0), "set_mmd": (8.0, 1.0), "hinton_kd": (2.0, 0.0), "histogram_ot": (0.5, 0.0),
}
#: The measured error of the textbook gallery stays below 1 / MARGIN of the floor.
MARGIN = 8.0
#: The relative error (times the scale S) that a converged iterative solver may add, the term t S of the floor.
SOLVER_ALLOWANCE = 1e-6
_SINKHORN = ("sinkhorn", "sinkhorn_divergence")


@dataclass(frozen=True)
class Floor:
    """The precision floor of one example: ``error`` (absolute), its ``unit`` u·S, and ``where`` the
    inputs sit (tags: "low precision", "near equality", "rank-deficient"). ``rank`` is the floor with
    S at least 1, used only to rank failures: at all-zero inputs S = 0, and any error (a 1e-9
    stabiliser) would otherwise outrank a wrong convention elsewhere.

    Examples
    --------
    >>> from kd2m_ref.testing.precision import Floor
    >>> floor = Floor(error=8e-7, unit=1e-7, where=("low precision",))
    >>> floor.units(4e-7), floor.describe(4e-7)
    (4.0, '4 u·S (low precision)')
    """

    error: float
    unit: float
    where: tuple
    rank: float = 0.0

    def units(self, error: float) -> float:
        """``error`` in units of u·S."""
        return error / self.unit if self.unit > 0 else (math.inf if error > 0 else 0.0)

    def describe(self, error: float) -> str:
        return f"{self.units(error):.3g} u·S" + (f" ({', '.join(self.where)})" if self.where else "")


def _radius(x) -> float:
    return float(np.max(np.linalg.norm(x, axis=1))) if len(x) else 0.0


def _ot_scale(key, ex) -> tuple[float, float]:
    """(S, exponent of u) for the OT family."""
    xs, xt = ex.args
    kw = ex.kwargs
    p = float(kw.get("p", 2.0))
    s = (_radius(xs) + _radius(xt)) ** p
    if "ys" in kw and kw.get("weights") == "sum":
        s *= len(np.unique(kw["ys"]))
    if key == "joint_wasserstein" and float(kw.get("beta", 1.0)) > 0:
        from ..reference.wasserstein import label_cost_matrix

        ys = np.asarray(kw["ys"])
        yt = kw.get("yt", ys)
        lab = label_cost_matrix(ys, np.asarray(yt), kw.get("label_cost", "onehot"), kw.get("num_classes"))
        s += float(kw.get("beta", 1.0)) * float(np.max(lab))
    if "n_projections" in kw:
        s *= 1.0 + math.log2(xs.shape[1] + 1)
    return s, min(1.0, p / 2)


def _sqrt_sum(eigs, u) -> float:
    """sum over eigenvalues (in units of the scale) of min(sqrt(u), u / (2 sqrt(lambda)))."""
    lam = np.clip(np.asarray(eigs, float), 0.0, None)
    with np.errstate(divide="ignore"):
        return float(np.sum(np.minimum(math.sqrt(u), np.where(lam > 0, u / (2 * np.sqrt(lam)), np.inf))))


def _gaussian_scale(key, ex, u):
    """(S, the square-root term in units of S, rank-deficient?) for the Gaussian family."""
    kw = _gaussian_params(ex)
    s_total, sq_total, deficient = 0.0, 0.0, False
    diag = kw["covariance"] == "diag"
    for weight, xs, xt, a, b in _gaussian_blocks(ex):
        (ms, cs), (mt, ct) = _fit(xs, a, kw), _fit(xt, b, kw)
        if diag:
            cs, ct = np.diag(np.diag(cs)), np.diag(np.diag(ct))
        ls, lt = np.linalg.eigvalsh(cs), np.linalg.eigvalsh(ct)
        deficient |= min(ls.min() / max(ls.max(), 1e-300), lt.min() / max(lt.max(), 1e-300)) < math.sqrt(u)
        if "kl" in key:
            lam_min = max(min(ls.min(), lt.min()), 1e-300)
            s = xs.shape[1] * (ls.max() / max(ls.min(), 1e-300) + lt.max() / max(lt.min(), 1e-300)) \
                + (ms @ ms + mt @ mt) / lam_min
            s_total += weight * s
            continue
        s = float(np.trace(cs) + np.trace(ct) + max(1.0, kw["mean_weight"]) * (ms @ ms + mt @ mt))
        if s == 0:
            continue
        if diag:
            eigs = np.concatenate([ls, lt]) / s
        else:
            root = _psd_sqrt(cs)
            eigs = np.concatenate([ls / s, lt / s, np.linalg.eigvalsh(root @ ct @ root) / s ** 2])
        s_total += weight * s
        sq_total += weight * s * _sqrt_sum(eigs, u)
    return s_total, sq_total, deficient


def _psd_sqrt(c):
    lam, vec = np.linalg.eigh(c)
    return (vec * np.sqrt(np.clip(lam, 0, None))) @ vec.T


def _mmd_scale(ex):
    """(S for the u term, S for the sqrt(u) term)."""
    from ..reference.kernel import bandwidth_from_rule

    xs, xt = ex.args
    kw = ex.kwargs
    mass = _mmd_error_mass(ex)
    kernel = kw.get("kernel", "gaussian")
    if kernel not in ("gaussian", "laplacian"):
        return mass, 0.0
    bw = kw.get("bandwidth", "mean")
    s = bandwidth_from_rule(xs, xt, bw) if isinstance(bw, str) else float(bw)
    span = (_radius(xs) + _radius(xt)) / s
    if kernel == "laplacian":
        return mass * (1 + span), mass * (1 + span)
    return mass * (1 + span ** 2), (mass * (1 + span ** 2) if isinstance(bw, str) else 0.0)


def _set_mmd_scale(ex):
    """(S for the u term, S for the sqrt(u) term): means over the sets."""
    parts = set_mmd_error_parts(ex)
    scales = [_mmd_scale(part) for part, _ in parts]
    return (sum(s for s, _ in scales) + sum(extra for _, extra in parts)) / len(parts), \
        sum(q for _, q in scales) / len(parts)


def gradient_allowance(key: str) -> float:
    """Relative error allowed to a gradient beyond rounding: sqrt(t) for the iterative keys (the value
    errs quadratically in the potentials' error, the gradient linearly), else 0.

    Examples
    --------
    >>> from kd2m_ref.testing.precision import gradient_allowance
    >>> gradient_allowance("sinkhorn")  # sqrt(SOLVER_ALLOWANCE)
    0.001
    >>> gradient_allowance("wasserstein")
    0.0
    """
    return math.sqrt(SOLVER_ALLOWANCE) if key in _SINKHORN + ("histogram_ot",) else 0.0


def precision_floor(key: str, example, dtype, reference: float) -> Floor:
    """The :class:`Floor` of ``example`` (float64 inputs as rounded to ``dtype``) for metric ``key``.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.testing import Example
    >>> from kd2m_ref.testing.precision import precision_floor
    >>> ex = Example((np.zeros((2, 1)), np.ones((2, 1))), {"p": 2.0})
    >>> floor = precision_floor("wasserstein", ex, "float32", 1.0)
    >>> f"{floor.error:.2e}", floor.describe(floor.error)  # S = 1, c = 8
    ('4.77e-07', '8 u·S (low precision)')
    """
    u = unit_roundoff(dtype)
    c, c_sqrt = CONSTANTS[key]
    where = [] if str(dtype).replace("torch.", "") == "float64" else ["low precision"]
    extra, deficient, power = 0.0, False, 1.0
    if key in ("gaussian_wasserstein", "class_conditional_gaussian_wasserstein", "gaussian_kl",
               "class_conditional_gaussian_kl", "grid_gaussian_wasserstein"):
        scale, sq, deficient = _gaussian_scale(key, example, u)
        error, extra = c * u * scale, c_sqrt * sq
    elif key in ("mmd", "set_mmd"):
        scale, sq = _mmd_scale(example) if key == "mmd" else _set_mmd_scale(example)
        error, extra = c * u * scale, c_sqrt * math.sqrt(u) * sq
    elif key == "hinton_kd":
        scale = hinton_kd_scale(example)
        error = c * u * scale
    elif key == "histogram_ot":
        cmax, rel = _histogram_scale(example)
        scale, error = cmax * rel, c * u * cmax * rel
        if not float(example.kwargs.get("epsilon", 0.0)) > 0:
            from ..reference.wasserstein import LP_MASS_TOL

            error += LP_MASS_TOL * cmax
        elif example.kwargs.get("n_iter") is None:
            error += SOLVER_ALLOWANCE * cmax
    else:
        scale, power = _ot_scale(key, example)
        error = c * u ** power * scale + (SOLVER_ALLOWANCE * scale if key in _SINKHORN else 0.0)
    if deficient:
        where.append("rank-deficient")
    if abs(reference) <= math.sqrt(u) * scale:
        where.append("near equality")
    return Floor(error + extra, u * scale, tuple(where), max(error + extra, c * u ** power))
