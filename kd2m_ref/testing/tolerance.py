"""Tolerance models: how far a computation in a given dtype may be from the float64 reference.

Each model returns ``(rtol, atol)`` for ``|value - reference| <= atol + rtol * |reference|``, with the
reference evaluated on the inputs *as rounded to that dtype* (so input rounding is not counted). The
bounds follow the conditioning of the input instead of one loose atol for everything:

* exact OT with costs from explicit differences: each cost entry has relative error <= (p(d+2)/2+1)u,
  so the optimal value has the same relative error, plus nm·u for the summation: a pure ``rtol``.
* sliced OT: projections ``x @ theta`` carry an absolute error ~ d·u·max|x|, which the p-th power
  propagates with the factor p·D^(p-1), D the largest projected gap: an ``atol``.
* Sinkhorn: the stopping rule bounds the marginal error by tol (raised to 32·n·eps in low precision);
  the value then moves by at most about tol·max C.
"""

from __future__ import annotations

import math

import numpy as np

#: Safety factor over the first-order error bounds above; bounds are worst-case, the factor
#: covers constants dropped in the first-order analysis (not a fudge of the scaling).
SAFETY = 8.0


def unit_roundoff(dtype) -> float:
    """The unit roundoff u (half the machine epsilon) of ``dtype``: a NumPy or torch dtype, or its name.

    Examples
    --------
    >>> from kd2m_ref.testing.tolerance import unit_roundoff
    >>> unit_roundoff("float64") == 2.0**-53
    True
    >>> unit_roundoff("torch.float32") == 2.0**-24
    True
    """
    return float(np.finfo(np.dtype(str(dtype).replace("torch.", ""))).eps) / 2


def _sizes(example):
    xs, xt = example.args
    p = float(example.kwargs.get("p", 2.0))
    return xs, xt, p, xs.shape[0], xt.shape[0], xs.shape[1]


def _max_cost(example) -> float:
    xs, xt, p, *_ = _sizes(example)
    sq = np.sum((xs[:, None, :] - xt[None, :, :]) ** 2, -1)
    return float(np.max(sq ** (p / 2))) + 2.0 * float(example.kwargs.get("beta", 0.0)) * (
        1.0 if example.kwargs.get("label_cost") != "cross_entropy" else 50.0)


def ot_tolerance(example, dtype) -> tuple[float, float]:
    """Exact and sliced OT; see the module docstring.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.testing import Example
    >>> from kd2m_ref.testing.tolerance import ot_tolerance
    >>> ex = Example((np.zeros((2, 1)), np.ones((2, 1))), {"p": 2.0})
    >>> [f"{t:.1e}" for t in ot_tolerance(ex, "float32")]  # rtol, atol
    ['5.7e-06', '4.8e-07']
    """
    xs, xt, p, n, m, d = _sizes(example)
    u = unit_roundoff(dtype)
    rtol = SAFETY * u * (p * (d + 2) + n * m + 2)
    atol = SAFETY * u * _max_cost(example)
    if "n_projections" in example.kwargs:
        radius = max(np.abs(xs).max(), np.abs(xt).max())
        gap = 2 * math.sqrt(d) * radius
        atol += SAFETY * p * (d + 2) * u * math.sqrt(d) * radius * gap ** (p - 1)
    return rtol, atol


def sinkhorn_tolerance(example, dtype) -> tuple[float, float]:
    """Sinkhorn: convergence-limited; see the module docstring.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.testing import Example
    >>> from kd2m_ref.testing.tolerance import sinkhorn_tolerance
    >>> xs, xt = np.zeros((2, 1)), np.ones((2, 1))
    >>> ex = Example((xs, xt), {"p": 2.0, "epsilon": 0.5})
    >>> [f"{t:.1e}" for t in sinkhorn_tolerance(ex, "float32")]  # rtol, atol
    ['5.7e-06', '4.4e-04']
    """
    xs, xt, p, n, m, d = _sizes(example)
    u = unit_roundoff(dtype)
    tol = max(float(example.kwargs.get("tol", 1e-9)), 64 * max(n, m) * u)
    cmax = _max_cost(example) + float(example.kwargs.get("epsilon", 0.1)) * math.log(n * m + 1)
    return SAFETY * u * (p * (d + 2) + n * m + 2), SAFETY * (tol + u) * cmax * 4


def _mmd_error_mass(example) -> float:
    """sum over blocks |w| sum_ij e_ij, with e_ij the first-order rounding bound (in units of u, before the
    dimension factor) of the kernel value k_ij: 1 for the bounded shift-invariant kernels,
    q·(|x||y| + c)^q for the polynomial (q = 1, c = 0: linear)."""
    xs, xt = example.args
    kw = example.kwargs
    kernel = kw.get("kernel", "gaussian")
    n, m = len(xs), len(xt)
    unbiased = kw.get("estimator", "biased") == "unbiased"
    wx = 1.0 / (n * (n - 1)) if unbiased else 1.0 / n**2
    wy = 1.0 / (m * (m - 1)) if unbiased else 1.0 / m**2
    if kernel in ("gaussian", "laplacian"):
        return wx * n * n + wy * m * m + 2.0
    q = int(kw.get("degree", 2)) if kernel == "polynomial" else 1
    c = float(kw.get("offset", 1.0)) if kernel == "polynomial" else 0.0
    nx, ny = np.linalg.norm(xs, axis=1), np.linalg.norm(xt, axis=1)

    def block(a, b):
        return float(np.sum(q * (np.outer(a, b) + c) ** q))

    return wx * block(nx, nx) + wy * block(ny, ny) + 2.0 / (n * m) * block(nx, ny)


def mmd_tolerance(example, dtype) -> tuple[float, float]:
    """MMD^2: a difference of kernel sums, so an absolute bound, u times the kernel error mass times
    (d + 8 + 2 log2(n + m)): distances or dot products (d + 2), the exponential, the bandwidth rule
    (s V'(s) is bounded by the same mass) and the summations.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.testing import Example
    >>> from kd2m_ref.testing.tolerance import mmd_tolerance
    >>> xs, xt = np.array([[0.0], [2.0]]), np.array([[1.0], [3.0]])
    >>> ex = Example((xs, xt), {"kernel": "linear"})
    >>> [f"{t:.1e}" for t in mmd_tolerance(ex, "float32")]  # rtol, atol
    ['1.9e-06', '5.9e-05']
    """
    xs, xt = example.args
    u = unit_roundoff(dtype)
    factor = xs.shape[1] + 8 + 2 * math.log2(len(xs) + len(xt) + 1)
    return SAFETY * u * 4, SAFETY * u * factor * _mmd_error_mass(example)


def set_mmd_error_parts(example) -> list:
    """``[(part, extra)]``, one per set of a ``set_mmd`` example: ``part`` the ``mmd`` example of the set pair
    as normalised by the reference (every parameter resolved), ``extra`` the error mass of the normalisation
    in units of u. Each coordinate of a normalised sample carries (d/2 + 3)u relative error (the sum of
    squares and the square root of the norm, the two divisions), an input perturbation of that size on both
    sides: it moves a linear or polynomial kernel by (d + 6)u times its error mass, and a shift-invariant
    kernel (and a bandwidth rule) by up to (d + 6)u R / s per entry (R the sum of the largest sample norms
    of the two sets, s the bandwidth): a distance errs by (d/2 + 3)u (``|x| + |y|``), and the kernel's
    derivative in the distance is at most 1/s.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.testing import Example
    >>> from kd2m_ref.testing.tolerance import set_mmd_error_parts
    >>> xs = np.array([[[1.0, 0.0]], [[0.0, 3.0]]])
    >>> xt = np.array([[[0.0, 2.0]], [[0.0, 1.0]]])
    >>> parts = set_mmd_error_parts(Example((xs, xt), {}))
    >>> [(part.args[1].tolist(), extra) for part, extra in parts]
    [([[0.0, 1.0]], 64.0), ([[0.0, 1.0]], 64.0)]
    """
    from ..reference.kernel import bandwidth_from_rule, set_inputs
    from ..registry import METRICS
    from .examples import Example

    params = {k: example.kwargs.get(k, p.default) for k, p in METRICS["set_mmd"].params.items()}
    normalize = params.pop("normalize")
    xs, xt = set_inputs(*example.args, normalize=normalize, **params)
    del params["detach_bandwidth"]
    parts = []
    for u, v in zip(xs, xt):
        part = Example((u, v), params)
        extra = 0.0
        if normalize == "l2":
            mass = _mmd_error_mass(part)
            if params["kernel"] in ("gaussian", "laplacian"):
                bw = params["bandwidth"]
                s = bandwidth_from_rule(u, v, bw) if isinstance(bw, str) else float(bw)
                mass *= (np.linalg.norm(u, axis=1).max() + np.linalg.norm(v, axis=1).max()) / s
            extra = (u.shape[1] + 6) * mass
        parts.append((part, extra))
    return parts


def set_mmd_tolerance(example, dtype) -> tuple[float, float]:
    """Per-set MMD^2 averaged over the sets: the mean of the ``mmd`` bounds of the normalised sets plus the
    normalisation's error (:func:`set_mmd_error_parts`).

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.testing import Example
    >>> from kd2m_ref.testing.tolerance import set_mmd_tolerance
    >>> xs = np.array([[[1.0, 0.0]], [[0.0, 3.0]]])
    >>> xt = np.array([[[0.0, 2.0]], [[0.0, 1.0]]])
    >>> [f"{t:.1e}" for t in set_mmd_tolerance(Example((xs, xt)), "float32")]
    ['1.9e-06', '8.1e-05']
    """
    u = unit_roundoff(dtype)
    parts = set_mmd_error_parts(example)
    atol = sum(mmd_tolerance(part, dtype)[1] + SAFETY * u * extra for part, extra in parts) / len(parts)
    return SAFETY * u * 4, atol


def hinton_kd_scale(example) -> float:
    """Hinton KD's error scale in units of u: each log-softmax entry has absolute error <= u·L,
    L = 2A + log C + 2 (A the largest ``|logit|/T``); each row ``sum_c p_c (log p_c - log q_c)`` then errs
    by <= u[2L + (L + C + 2) G] with ``G = max_b sum_c p_c |log p_c - log q_c|`` (measured on the
    example), times T^2.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.testing import Example
    >>> from kd2m_ref.testing.tolerance import hinton_kd_scale
    >>> student, teacher = np.array([[0.0, 0.0]]), np.array([[0.0, 1.0986]])
    >>> round(float(hinton_kd_scale(Example((student, teacher)))), 2)  # in u
    14.02
    """
    from ..reference.logit import log_softmax

    us, ut = example.args
    t = float(example.kwargs.get("temperature", 1.0))
    c = us.shape[1]
    a = max(np.abs(us).max(), np.abs(ut).max()) / t
    lp, lq = log_softmax(us / t), log_softmax(ut / t)
    if example.kwargs.get("direction", "teacher_student") == "teacher_student":
        lp, lq = lq, lp
    g = float(np.max(np.sum(np.exp(lp) * np.abs(lp - lq), 1)))
    big_l = 2 * a + math.log(c) + 2
    return t * t * (2 * big_l + (big_l + c + 2) * g)


def hinton_kd_tolerance(example, dtype) -> tuple[float, float]:
    """Hinton KD: :func:`hinton_kd_scale` u, plus the batch mean's summation.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.testing import Example
    >>> from kd2m_ref.testing.tolerance import hinton_kd_tolerance
    >>> student, teacher = np.array([[0.0, 0.0]]), np.array([[0.0, 1.0986]])
    >>> ex = Example((student, teacher), {"temperature": 1.0})
    >>> [f"{t:.1e}" for t in hinton_kd_tolerance(ex, "float32")]  # rtol, atol
    ['9.5e-07', '6.7e-06']
    """
    u = unit_roundoff(dtype)
    return SAFETY * u * (math.log2(len(example.args[0])) + 2), SAFETY * u * hinton_kd_scale(example)


# ----------------------------------------------------------------------------------- Gaussian family
# W2: every step (means, centring, the Procrustes polar factor and residual) is backward stable in the
# centred data, and W2 is 1-Lipschitz in the data factor, so the error is absolute *in W2*:
#   |dW2| <= SAFETY u (n + m + d) (scale + sqrt(d) max|x|),   scale = sqrt(tr Σ_S + tr Σ_T),
# i.e. for the returned W2^2 an atol e (2 W2 + e). KL: Cholesky and the covariance products carry a
# relative error ~(n + d) u amplified by the condition numbers of the covariances; KL moves by
# e (sqrt(d KL) + KL) plus the whitened mean error. A mean weight w makes the value the W2^2 of data whose
# means are scaled by sqrt(w): e grows by max(1, sqrt(w)). Feature maps (grid_gaussian_wasserstein) are
# one block per image and grid cell, of weight 1 / (B cells).


def _gaussian_params(example) -> dict:
    """The parameters of a Gaussian-family example, the defaults filled in (those of
    ``grid_gaussian_wasserstein`` for feature maps, else of ``gaussian_wasserstein``, shared by the family)."""
    from ..registry import METRICS

    key = "grid_gaussian_wasserstein" if np.ndim(example.args[0]) == 4 else "gaussian_wasserstein"
    return {name: example.kwargs.get(name, p.default) for name, p in METRICS[key].params.items()}


def _gaussian_blocks(example):
    from .._conventions import class_blocks, grid_cells

    xs, xt = example.args
    kw = example.kwargs
    a, b = kw.get("a"), kw.get("b")
    if xs.ndim == 4:
        batch, channels, height, width = xs.shape
        params = _gaussian_params(example)
        cells = grid_cells(height, width, params["grid"], params["estimator"])
        return [(1.0 / (batch * len(cells)), xs[i, :, r, c].reshape(channels, -1).T,
                 xt[i, :, r, c].reshape(channels, -1).T, None, None) for i in range(batch) for r, c in cells]
    if "ys" not in kw:
        return [(1.0, xs, xt, a, b)]
    return [(blk.weight, xs[blk.index_s], xt[blk.index_t], None if a is None else a[blk.index_s],
             None if b is None else b[blk.index_t])
            for blk in class_blocks(kw["ys"], kw.get("yt"), len(xs), len(xt), weights=kw.get("weights", "uniform"), a=a)]


def _fit(x, w, kw):
    from ..reference.gaussian import fit_gaussian

    return fit_gaussian(x, a=w, estimator=kw.get("estimator", "mle"), eps=kw.get("eps", 0.0))


def gaussian_tolerance(example, dtype) -> tuple[float, float]:
    """Gaussian W2 (full and diagonal, class-conditional and per grid cell too); see the comment above.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.testing import Example
    >>> from kd2m_ref.testing.tolerance import gaussian_tolerance
    >>> xs, xt = np.array([[0.0], [2.0]]), np.array([[1.0], [5.0]])
    >>> [f"{t:.1e}" for t in gaussian_tolerance(Example((xs, xt)), "float32")]
    ['0.0e+00', '7.7e-05']
    """
    from ..reference.gaussian import gaussian_wasserstein

    u, kw = unit_roundoff(dtype), _gaussian_params(example)
    stretch = max(1.0, math.sqrt(kw["mean_weight"]))
    atol = 0.0
    for weight, xs, xt, a, b in _gaussian_blocks(example):
        (_, cs), (_, ct) = _fit(xs, a, kw), _fit(xt, b, kw)
        scale = math.sqrt(np.trace(cs) + np.trace(ct))
        radius = max(np.abs(xs).max(), np.abs(xt).max())
        e = stretch * SAFETY * u * (len(xs) + len(xt) + xs.shape[1]) * (scale + math.sqrt(xs.shape[1]) * radius)
        w2 = math.sqrt(gaussian_wasserstein(xs, xt, a=a, b=b, covariance=kw["covariance"], estimator=kw["estimator"],
                                            eps=kw["eps"], mean_weight=kw["mean_weight"]))
        atol += weight * e * (2 * w2 + e)
    return 0.0, atol


def gaussian_kl_tolerance(example, dtype) -> tuple[float, float]:
    """Gaussian KL (full and diagonal, class-conditional too); see the comment above.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.testing import Example
    >>> from kd2m_ref.testing.tolerance import gaussian_kl_tolerance
    >>> xs, xt = np.array([[0.0], [2.0]]), np.array([[1.0], [5.0]])
    >>> ex = Example((xs, xt))
    >>> [f"{t:.1e}" for t in gaussian_kl_tolerance(ex, "float32")]
    ['0.0e+00', '3.3e-05']
    """
    from ..reference.gaussian import gaussian_kl

    u, kw = unit_roundoff(dtype), example.kwargs
    atol = 0.0
    for weight, xs, xt, a, b in _gaussian_blocks(example):
        (_, cs), (_, ct) = _fit(xs, a, kw), _fit(xt, b, kw)
        if kw.get("covariance", "full") == "diag":
            cs, ct = np.diag(np.diag(cs)), np.diag(np.diag(ct))
        lam_s, lam_t = np.linalg.eigvalsh(cs), np.linalg.eigvalsh(ct)
        d = xs.shape[1]
        kappa = lam_s.max() / lam_s.min() + lam_t.max() / lam_t.min()
        e = SAFETY * u * (len(xs) + len(xt) + d) * kappa
        kl = gaussian_kl(xs, xt, a=a, b=b, covariance=kw.get("covariance", "full"),
                         estimator=kw.get("estimator", "mle"), eps=kw.get("eps", 0.0),
                         direction=kw.get("direction", "student_teacher"))
        radius = max(np.abs(xs).max(), np.abs(xt).max())
        dmu = SAFETY * u * (len(xs) + len(xt)) * math.sqrt(d) * radius / math.sqrt(min(lam_s.min(), lam_t.min()))
        atol += weight * (e * (math.sqrt(d * kl) + kl + d * e) + dmu * (2 * math.sqrt(2 * kl) + dmu))
    return 0.0, atol


# ------------------------------------------------------------------------------- histogram OT
# The value is a batch mean of OT problems between histograms p_S, p_T with a given cost C. Every
# float op on a probability or a kernel entry carries a relative error ~u: the softmax contributes
# u L (L = 2 max|u|/T + log K + 2, as for Hinton KD) to each log p, the kernel exp(-C/eps) u C/eps to
# each log K_ij, and the logsumexp of an iteration u (log K + C/eps). OT is max C-Lipschitz in p
# (L1) and in the plan, so each relative error r of the entries moves the value by <= r max C; the
# iterations contract earlier errors (measured: no growth with the number of iterations), a converged
# run adds the stopping rule's tol max C (tol raised to 64 K u as in the torch layer), an exact one the
# reference LP's feasibility tolerance.


def _histogram_scale(example) -> tuple[float, float]:
    """(max C, relative error of the entries in units of u) of a ``histogram_ot`` example."""
    us, ut = example.args
    kw = example.kwargs
    k = us.shape[1]
    cost = kw.get("cost")
    cmax = 1.0 if cost is None else float(np.max(cost))
    rel = 2 * k + 2
    if kw.get("inputs", "logits") == "logits":
        rel += 2 * (2 * max(np.abs(us).max(), np.abs(ut).max()) / float(kw.get("temperature", 1.0)) + math.log(k) + 2)
    eps = float(kw.get("epsilon", 0.0))
    if eps > 0:
        rel += 2 * (cmax / eps + math.log(k) + 2)
    return cmax, rel


def histogram_ot_tolerance(example, dtype) -> tuple[float, float]:
    """Histogram OT; see the comment above.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.testing import Example
    >>> from kd2m_ref.testing.tolerance import histogram_ot_tolerance
    >>> p_s, p_t = np.array([[1.0, 1.0]]), np.array([[1.0, 3.0]])
    >>> ex = Example((p_s, p_t), {"inputs": "probabilities"})
    >>> [f"{t:.1e}" for t in histogram_ot_tolerance(ex, "float32")]
    ['9.5e-07', '2.9e-06']
    """
    us, _ = example.args
    u = unit_roundoff(dtype)
    cmax, rel = _histogram_scale(example)
    atol = SAFETY * u * rel * cmax
    kw = example.kwargs
    if float(kw.get("epsilon", 0.0)) > 0 and kw.get("n_iter") is None:
        tol = max(float(kw.get("tol", 1e-9)), 64 * us.shape[1] * u)
        atol += SAFETY * (tol + u) * cmax * 4
    elif not float(kw.get("epsilon", 0.0)) > 0:
        from ..reference.wasserstein import LP_MASS_TOL

        atol += LP_MASS_TOL * cmax  # the reference LP's feasibility (see there)
    return SAFETY * u * (math.log2(len(us)) + 2), atol
