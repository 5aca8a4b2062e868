r"""Gaussian closed forms for experiment B1: linear encoders of Gaussian inputs.

With :math:`x\sim N(0,I_p)` and :math:`\phi(x)=Ax+b`, :math:`\phi\sharp P=N(b,AA^\top)`. For the
Gaussian kernel :math:`k_\sigma(u,z)=e^{-\|u-z\|^2/2\sigma^2}` and :math:`\Delta\sim N(\delta,M)`,

.. math:: e(\delta,M)=\mathbb E\,e^{-\|\Delta\|^2/2\sigma^2}
          =\det(I+M/\sigma^2)^{-1/2}\exp\!\big(-\tfrac12\delta^\top(M+\sigma^2I)^{-1}\delta\big).
"""

from __future__ import annotations

import math

import numpy as np

from kd2m_ref.reference.gaussian import gaussian_wasserstein_from_moments

from ..functions import KernelExpansion


def expected_kernel(delta, m, sigma: float) -> float:
    r""":math:`e(\delta,M)`: the mean of :math:`e^{-\|\Delta\|^2/2\sigma^2}` for :math:`\Delta\sim N(\delta,M)`."""
    delta, m = np.atleast_1d(np.asarray(delta, np.float64)), np.atleast_2d(np.asarray(m, np.float64))
    eye = np.eye(len(delta))
    _, logdet = np.linalg.slogdet(eye + m / sigma**2)
    quad = float(delta @ np.linalg.solve(m + sigma**2 * eye, delta))
    return math.exp(-0.5 * logdet - 0.5 * quad)


def expectation(f: KernelExpansion, mean, cov) -> float:
    r""":math:`\mathbb E_{z\sim N(m,\Sigma)}f(z)=\sum_jc_j\,e(m-u_j,\Sigma)` (with ``f``'s bandwidth)."""
    return float(sum(c * expected_kernel(np.asarray(mean) - u, cov, f.sigma) for u, c in zip(f.centers, f.coef)))


def gaussian_mmd(mean1, cov1, mean2, cov2, sigma: float) -> float:
    r""":math:`\mathrm{MMD}_k(N_1,N_2)=\sqrt{e(0,2\Sigma_1)+e(0,2\Sigma_2)-2e(m_1-m_2,\Sigma_1+\Sigma_2)}`."""
    zero = np.zeros(len(np.atleast_1d(mean1)))
    sq = (expected_kernel(zero, 2 * np.asarray(cov1), sigma) + expected_kernel(zero, 2 * np.asarray(cov2), sigma)
          - 2 * expected_kernel(np.asarray(mean1) - np.asarray(mean2), np.asarray(cov1) + np.asarray(cov2), sigma))
    return math.sqrt(max(sq, 0.0))


def kernel_coupling_jensen(delta, m, sigma: float) -> float:
    r"""Jensen upper bound of the coupling term: :math:`\mathbb E\,d_k(\Delta)\le\sqrt{2-2e(\delta,M)}`."""
    return math.sqrt(max(2.0 - 2.0 * expected_kernel(delta, m, sigma), 0.0))


def euclidean_sandwich(mean_s, cov_s, mean_t, cov_t, delta_cov) -> dict[str, float]:
    r"""Euclidean bounds on :math:`W_1(N_S,N_T)`: :math:`\|\mu_S-\mu_T\|\le W_1\le W_2=\mathrm{Bures}
    \le\sqrt{\mathrm{tr}M+\|\delta\|^2}` (the last is the paired coupling :math:`\phi_S-\phi_T\sim N(\delta,M)`).
    Bures from ``kd2m_ref.reference.gaussian_wasserstein_from_moments`` (squared W2, square-rooted here)."""
    delta = np.asarray(mean_s) - np.asarray(mean_t)
    bures = math.sqrt(max(gaussian_wasserstein_from_moments(mean_s, mean_t, cov_s, cov_t), 0.0))
    return {"mean_gap": float(np.linalg.norm(delta)), "w2_bures": bures,
            "coupling_rms": math.sqrt(float(np.trace(delta_cov)) + float(delta @ delta))}
