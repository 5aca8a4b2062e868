r"""The test functions of the bounds: RKHS functions of a Gaussian kernel with exact norms, and the
linear softmax head whose cross-entropy is Lipschitz in the features.

``KernelExpansion`` evaluates in ``np.longdouble``; differences :math:`f(z^S_i)-f(z^T_i)` use
:math:`k(u,s)-k(u,t)=e^{-B}\,\mathrm{expm1}(B-A)` with :math:`B-A=\langle s-t,\,2u-s-t\rangle/2\sigma^2`,
accurate relative to :math:`\|s-t\|`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from .distances import (LD, SQRT2, gaussian_kernel_ld, mmd, normalised_weights, squared_distances_ld,
                        squared_euclidean_distance)


@dataclass(frozen=True)
class KernelExpansion:
    r"""An RKHS function :math:`f=\sum_j c_j k_\sigma(u_j,\cdot)` of the Gaussian kernel
    :math:`k_\sigma(u,z)=e^{-\|u-z\|^2/2\sigma^2}`, with exact norm :math:`\|f\|^2=c^\top K_{uu}c`."""

    centers: np.ndarray
    coef: np.ndarray
    sigma: float

    def _k(self, z):
        return gaussian_kernel_ld(z, self.centers, self.sigma)

    def __call__(self, z) -> np.ndarray:
        """Values :math:`f(z_i)`."""
        return (self._k(np.atleast_2d(z)) @ self.coef.astype(LD)).astype(np.float64)

    def norm(self) -> float:
        r""":math:`\|f\|_{\mathcal H_k}=\sqrt{c^\top K_{uu}c}` (longdouble)."""
        c = self.coef.astype(LD)
        return float(np.sqrt(max(c @ self._k(self.centers) @ c, LD(0.0))))

    def difference(self, zs, zt) -> np.ndarray:
        r"""Rows :math:`f(z^S_i)-f(z^T_i)` via :math:`k(u,s)-k(u,t)=e^{-A}-e^{-B}`, written as
        :math:`-e^{-A}\mathrm{expm1}(A-B)` (B >= A) or :math:`e^{-B}\mathrm{expm1}(B-A)` (B < A) with
        :math:`B-A=\langle s-t, 2u-s-t\rangle/2\sigma^2` (no cancellation when :math:`s\approx t`, no overflow)."""
        s, t, u = (np.asarray(v, LD) for v in (zs, zt, self.centers))
        two_s2 = LD(2.0) * LD(self.sigma) ** 2
        delta = s - t                                           # (n, d)
        mid = 2 * u[None, :, :] - s[:, None, :] - t[:, None, :]  # (n, J, d)
        b_minus_a = np.einsum("nd,njd->nj", delta, mid) / two_s2
        b = squared_distances_ld(t, u) / two_s2
        a = squared_distances_ld(s, u) / two_s2
        # e^{-A} - e^{-B}, factored on the smaller exponent so that nothing overflows
        diff = np.where(b_minus_a >= 0, -np.exp(-a) * np.expm1(-np.abs(b_minus_a)),
                        np.exp(-b) * np.expm1(-np.abs(b_minus_a)))
        return (diff @ self.coef.astype(LD)).astype(np.float64)

    def scaled_to(self, radius: float) -> "KernelExpansion":
        """The same direction with norm ``radius``."""
        return KernelExpansion(self.centers, self.coef * (radius / self.norm()), self.sigma)

    def squared(self) -> "KernelExpansion":
        r""":math:`g^2` as an expansion of :math:`k_{\sigma/\sqrt2}`:

        .. math:: g(z)^2=\sum_{j,l}c_jc_l\sqrt{k_\sigma(u_j,u_l)}\;k_{\sigma/\sqrt2}\big(\tfrac{u_j+u_l}2,z\big),

        so :meth:`norm` of the result is the exact :math:`\|g^2\|_{\mathcal H_{k^2}}` (C9: at most :math:`\|g\|^2`).
        """
        u, c = self.centers, self.coef
        mid = (u[:, None, :] + u[None, :, :]) / 2
        k_uu = np.exp(-squared_euclidean_distance(u, u) / (2 * self.sigma**2))
        beta = np.outer(c, c) * np.sqrt(k_uu)
        return KernelExpansion(mid.reshape(-1, u.shape[1]), beta.ravel(), self.sigma / SQRT2)


def mmd_witness(zs, zt, sigma: float, w=None, mmd_value: float | None = None) -> KernelExpansion:
    r"""(F3) the unit-norm witness :math:`f^\*=(\mu_{\hat P_S}-\mu_{\hat P_T})/\mathrm{MMD}_k`, which attains C1."""
    w = normalised_weights(w, len(zs))
    m = mmd(zs, zt, sigma, w, w) if mmd_value is None else mmd_value
    return KernelExpansion(np.concatenate([zs, zt]), np.concatenate([w, -w]) / m, sigma)


@dataclass(frozen=True)
class LinearHead:
    r"""(F4) softmax cross-entropy of a linear head, :math:`\mathrm{CE}(Wz+b,y)`, which is
    :math:`L=\sqrt2\,\|W\|_{op}`-Lipschitz in :math:`z` for every label."""

    weight: np.ndarray  # (C, d)
    bias: np.ndarray    # (C,)

    @property
    def lipschitz(self) -> float:
        r""":math:`\sqrt2\,\|W\|_{op}`."""
        return SQRT2 * float(np.linalg.norm(self.weight, 2))

    def cross_entropy(self, z, y) -> np.ndarray:
        r"""Rows :math:`\mathrm{logsumexp}(Wz_i+b)-(Wz_i+b)_{y_i}` (``y`` an int or an array)."""
        logits = np.asarray(z, np.float64) @ self.weight.T + self.bias
        y = np.broadcast_to(np.asarray(y), (len(logits),))
        return logsumexp(logits, axis=1) - logits[np.arange(len(logits)), y]
