r"""The distances between empirical measures that every experiment uses, each named for what it returns.

``mmd`` returns :math:`\mathrm{MMD}_k` (not squared); ``ot_cost`` returns the optimal transport cost
for a given cost matrix (:math:`W_1` for a metric cost, :math:`W_2^2` for a squared one);
``class_conditional_w1`` and ``joint_w1`` return :math:`W_1` values. Cost matrices come from
``scipy.spatial.distance.cdist`` (explicit differences, no :math:`\|x\|^2+\|y\|^2-2x\cdot y`
cancellation, and no :math:`n\times m\times d` array, so they scale to 512-d network features).

Numerics. Kernel distances use :math:`d_k=\sqrt{-2\,\mathrm{expm1}(-r^2/2\sigma^2)}` (no cancellation
near 0). MMD uses the energy form of the V-statistic with squared distances from explicit
differences in ``np.longdouble``. Optimal transport is ``kd2m_ref.reference.wasserstein.ot_plan``
(the Hungarian algorithm for equal uniform clouds, HiGHS otherwise).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.distance import cdist

from kd2m_ref._conventions import class_blocks
from kd2m_ref.reference.wasserstein import ot_plan

SQRT2 = math.sqrt(2.0)
LD = np.longdouble


def normalised_weights(w, n: int) -> np.ndarray:
    """``w / sum(w)``, or uniform weights ``1/n`` when ``w`` is None."""
    return np.full(n, 1.0 / n) if w is None else np.asarray(w, np.float64) / np.sum(w)


def euclidean_distance(x, y) -> np.ndarray:
    r"""Matrix :math:`\|x_i-y_j\|_2`."""
    return cdist(np.asarray(x, np.float64), np.asarray(y, np.float64))


def squared_euclidean_distance(x, y) -> np.ndarray:
    r"""Matrix :math:`\|x_i-y_j\|_2^2` (the cost whose ``ot_cost`` is :math:`W_2^2`)."""
    return cdist(np.asarray(x, np.float64), np.asarray(y, np.float64), "sqeuclidean")


def kernel_distance(x, y, sigma: float) -> np.ndarray:
    r"""Gaussian-kernel metric matrix :math:`d_k(x_i,y_j)=\sqrt{-2\,\mathrm{expm1}(-\|x_i-y_j\|^2/2\sigma^2)}`.

    Equal to :math:`\|\Phi(x)-\Phi(y)\|_{\mathcal H_k}=\sqrt{2-2k(x,y)}`, computed without the
    cancellation of :math:`2-2k` for close points; bounded by :math:`\sqrt2`."""
    return np.sqrt(np.maximum(-2.0 * np.expm1(-squared_euclidean_distance(x, y) / (2.0 * sigma**2)), 0.0))


def paired_kernel_distance(zs, zt, sigma: float) -> np.ndarray:
    r"""Rows :math:`d_k(z^S_i,z^T_i)` of paired clouds (the coupling term's integrand)."""
    sq = np.sum((np.asarray(zs, np.float64) - np.asarray(zt, np.float64)) ** 2, axis=1)
    return np.sqrt(np.maximum(-2.0 * np.expm1(-sq / (2.0 * sigma**2)), 0.0))


def squared_distances_ld(x, y, block: int = 2_000_000) -> np.ndarray:
    r""":math:`\|x_i-y_j\|^2` from explicit differences in ``np.longdouble``, in row blocks of at most
    ``block`` elements of the difference array."""
    x, y = np.asarray(x, LD), np.asarray(y, LD)
    rows = max(1, block // max(1, y.shape[0] * y.shape[1]))
    out = np.empty((x.shape[0], y.shape[0]), LD)
    for i in range(0, x.shape[0], rows):
        diff = x[i:i + rows, None, :] - y[None, :, :]
        out[i:i + rows] = np.sum(diff * diff, axis=-1)
    return out


def gaussian_kernel_ld(x, y, sigma: float) -> np.ndarray:
    r"""Gaussian kernel matrix :math:`e^{-\|x_i-y_j\|^2/2\sigma^2}` in ``np.longdouble`` (the Gram
    matrices of RKHS functions and their norms)."""
    return np.exp(-squared_distances_ld(x, y) / (LD(2.0) * LD(sigma) ** 2))


def mmd(xs, xt, sigma: float, a=None, b=None) -> float:
    r""":math:`\mathrm{MMD}_k` (**not squared**) between weighted discrete measures, Gaussian kernel
    :math:`k(x,y)=e^{-\|x-y\|^2/2\sigma^2}`. Energy form of the V-statistic (with :math:`\sum a=\sum b=1`
    and :math:`k=1-d_k^2/2`):

    .. math:: \mathrm{MMD}_k^2 = \sum_{ij}a_ib_j d_k^2(x_i,y_j) - \tfrac12\sum_{ij}a_ia_j d_k^2(x_i,x_j)
              - \tfrac12\sum_{ij}b_ib_j d_k^2(y_i,y_j),

    in ``np.longdouble`` with :math:`d_k^2=-2\,\mathrm{expm1}(\cdot)`. Equal measures give 0 to
    longdouble roundoff. With uniform weights it is the square root of
    ``kd2m_ref.reference.mmd(xs, xt, bandwidth=sigma)`` (checked in the tests)."""
    xs, xt = np.asarray(xs, np.float64), np.asarray(xt, np.float64)
    a = normalised_weights(a, len(xs)).astype(LD)
    b = normalised_weights(b, len(xt)).astype(LD)
    s2 = LD(2.0) * LD(sigma) ** 2

    def d2(u, v):
        return LD(-2.0) * np.expm1(-squared_distances_ld(u, v) / s2)

    value = (np.sum(np.outer(a, b) * d2(xs, xt)) - np.sum(np.outer(a, a) * d2(xs, xs)) / 2
             - np.sum(np.outer(b, b) * d2(xt, xt)) / 2)
    return float(np.sqrt(max(value, LD(0.0))))


def ot_cost(cost, a=None, b=None) -> float:
    r""":math:`\min_{\gamma\in U(a,b)}\sum_{ij}\gamma_{ij}c_{ij}`: :math:`W_1` for a metric cost
    (Euclidean, :math:`d_k`, feature + label cost), :math:`W_2^2` for a squared Euclidean one."""
    cost = np.asarray(cost, np.float64)
    return float(np.sum(ot_plan(cost, a, b) * cost))


def class_conditional_w1(zs, zt, y, ground, w=None) -> float:
    r""":math:`\sum_c \hat p_c\,W_1^d(\hat P_S^c,\hat P_T^c)` with :math:`\hat p_c=\sum_{i:y_i=c}w_i` (the
    ``prior`` weights of :func:`kd2m_ref._conventions.class_blocks`); ``ground(x, y)`` returns the cost matrix."""
    total = 0.0
    for blk in class_blocks(np.asarray(y), None, len(zs), len(zt), weights="prior", a=w):
        sub = None if w is None else np.asarray(w, np.float64)[blk.index_s]
        total += blk.weight * ot_cost(ground(zs[blk.index_s], zt[blk.index_t]), sub, sub)
    return total


def joint_w1(zs, zt, y, ground, beta: float, w=None) -> float:
    r"""Joint :math:`W_1` between :math:`(\phi_S,y)\sharp\hat P` and :math:`(\phi_T,y)\sharp\hat P` for the
    cost :math:`d(z,z')+\beta\,1[y\ne y']`. For :math:`\beta\ge\max_{ij}d_{ij}` it equals the
    class-conditional term: rerouting any cycle of cross-class mass inside the classes saves
    :math:`\beta` per unit and costs at most :math:`\max d`."""
    y = np.asarray(y)
    return ot_cost(ground(zs, zt) + beta * (y[:, None] != y[None, :]), w, w)
