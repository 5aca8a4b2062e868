r"""Hinton's logit distillation loss, float64.

The KL divergence between two softmaxes is a difference of nearly equal numbers when the logits are
close (the student at the teacher). The reference avoids that cancellation: it forms the logit gap
exactly (TwoSum), removes its per-row constant before dividing by T, and sums the non-negative terms
of the f-divergence form :math:`\mathrm{KL}(p\|q)=\sum_c q_c\,\varphi(\log p_c-\log q_c)`,
:math:`\varphi(r)=re^r-e^r+1\ge0`, so the value keeps its relative accuracy down to 0.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_array, check_logits
from .._conventions import check_hinton_kd_params

# phi(r) = sum_{k>=2} (k-1)/k! r^k, used for |r| < 1 (truncation below 1e-19 relative).
_PHI_COEFFS = [(k - 1) / math.factorial(k) for k in range(2, 24)]


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax, max-shifted."""
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.sum(np.exp(z), 1, keepdims=True))


def _tempered_log_softmax(u: np.ndarray, temperature: float) -> np.ndarray:
    """log softmax(u / T), accurate to a few ulps of each entry at any T: the gaps to the row maximum are
    formed before dividing by T (``u/T - max(u/T)`` would err by ulp(max|u|/T)), and the log-sum is
    ``log1p`` of the mass off the maximum, so a saturated row keeps ``log p_max = -1e-300``."""
    top = np.argmax(u, 1)[:, None]
    z = (u - np.take_along_axis(u, top, 1)) / temperature
    e = np.exp(z)
    np.put_along_axis(e, top, 0.0, 1)  # exp(0) = 1 of the maximum, carried by log1p
    return z - np.log1p(np.sum(e, 1, keepdims=True))


def _log_partition(r: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    r"""Per row :math:`\log Z = \log\sum_c q_c e^{r_c}` (so :math:`\log p_c = \log q_c + r_c - \log Z`).

    Where :math:`q_ce^{r_c}` cannot overflow (every :math:`\log q_c + r_c \le 600`), ``log1p`` of
    :math:`\sum_c q_c(e^{r_c}-1)`: near equality :math:`\log Z` is tiny and keeps its relative accuracy
    (its error enters the KL squared). Each term is ``q·expm1(r)`` for r < 1 and ``exp(log q + r) - q``
    beyond, so e^r itself is never formed (no inf, no 0·inf). Elsewhere :math:`\log Z > 590` and the
    max-shifted log-sum-exp is as accurate as its inputs."""
    a = log_q + r  # log(q_c e^{r_c}) = log p_c + log Z
    q = np.exp(log_q)
    small_r = r < 1
    grow = np.exp(np.minimum(a, 600.0)) - q  # only used where a <= 600
    dz = np.where(small_r, q * np.expm1(np.where(small_r, r, 0.0)), grow)
    near = np.log1p(np.sum(dz, 1, keepdims=True))
    top = np.argmax(a, 1)[:, None]
    m = np.take_along_axis(a, top, 1)
    e = np.exp(a - m)
    np.put_along_axis(e, top, 0.0, 1)
    far = m + np.log1p(np.sum(e, 1, keepdims=True))
    return np.where(m <= 600.0, near, far)


def _phi_times_q(x: np.ndarray, log_q: np.ndarray, log_p: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """scale^2·q·phi(x), x = log p - log q: the series q (scale·x)^2 S(x), S = phi(x)/x^2, for |x| < 1
    (scale·x formed first: at large T = scale, x^2 ~ (gap/T)^2 would underflow), else
    scale·(scale·(p(x - 1) + q)), p and q exponentials of log-probabilities (<= 0: no overflow, whatever
    the size of x)."""
    small = np.abs(x) < 1
    xs = np.where(small, x, 0.0)
    series = np.zeros_like(x)
    for c in reversed(_PHI_COEFFS):
        series = series * xs + c
    y = scale * xs
    q = np.exp(log_q)
    # masked before scaling: at |x| < 1 this form is rounding noise, which T^2 = 1e600 would overflow
    large = scale * (scale * np.where(small, 0.0, np.exp(log_p) * (x - 1.0) + q))
    return np.where(small, (q * series) * y * y, large)


def kl_rows(u_p: np.ndarray, u_q: np.ndarray, temperature: float, *, scale: float = 1.0) -> np.ndarray:
    r"""Per-row :math:`s^2\,\mathrm{KL}(\mathrm{softmax}(u_p/T)\,\|\,\mathrm{softmax}(u_q/T))` (``scale`` s,
    default 1), accurate to a few ulps relative also when the two rows are nearly equal or differ by a
    constant, and at any T: gaps :math:`|u/T|` far beyond the exponent range of float64 included (small T),
    and with s = T also a KL ~ (gap/T)^2 below it (large T; :func:`hinton_kd` passes s = T)."""
    hi = u_p - u_q  # TwoSum: hi + lo == u_p - u_q exactly
    bv = hi - u_p
    lo = (u_p - (hi - bv)) + (-u_q - bv)
    log_q = _tempered_log_softmax(u_q, temperature)
    log_p = _tempered_log_softmax(u_p, temperature)
    # any per-row constant is exact to remove: take the gap at the most probable class of q, so
    # that rows differing by a constant give r == 0 exactly
    k = np.argmax(log_q, 1)[:, None]
    r = ((hi - np.take_along_axis(hi, k, 1)) + (lo - np.take_along_axis(lo, k, 1))) / temperature
    log_z = _log_partition(r, log_q)
    # x = log p_c - log q_c two ways, each class taking the one with the smaller rounding error:
    # r - log Z (relative accuracy near equality: r and log Z are then small) or the difference of
    # the log-softmaxes (where r and log Z are large, e.g. a softmax saturated at small T)
    via_gap = np.abs(r) + np.abs(log_z) <= np.abs(log_p) + np.abs(log_q)
    x = np.where(via_gap, r - log_z, log_p - log_q)
    terms = _phi_times_q(x, log_q, log_p, scale)
    return np.array([math.fsum(row) for row in terms])


def hinton_kd(logits_student, logits_teacher, *, temperature: float = 1.0,
              direction: str = "teacher_student") -> float:
    r"""Hinton's distillation loss: :math:`T^2` times the batch mean of the KL between tempered softmaxes.

    .. math:: \mathcal L_{KD} = \frac{T^2}{B}\sum_{b=1}^{B}\mathrm{KL}\big(p_{T,b}^{(T)}\,\|\,p_{S,b}^{(T)}\big),
              \qquad p^{(T)} = \mathrm{softmax}(u/T)

    ``direction="teacher_student"`` (default, Hinton et al. 2015): KL(teacher || student).
    ``"student_teacher"``: KL(student || teacher), what the paper's code computes
    (``F.kl_div(log_softmax(u_T/T), log_softmax(u_S/T), log_target=True)``). ``temperature`` T > 0,
    default 1 (the paper's code). Rows are samples, columns classes; the batch mean divides by B
    ("batchmean"). Logits are used through log-softmax only.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.reference import hinton_kd
    >>> student = np.array([[0.0, 0.0]])
    >>> teacher = np.array([[0.0, np.log(3.0)]])  # p_T = (1/4, 3/4)
    >>> round(hinton_kd(student, teacher), 4)
    0.1308
    >>> round(hinton_kd(student, teacher, temperature=2.0), 4)  # T^2 KL
    0.1454
    >>> hinton_kd(student, student + 1.0)  # a shift changes no probability
    0.0
    """
    check_hinton_kd_params(temperature, direction)
    us = check_logits(as_array(logits_student, "logits_student"), "logits_student").astype(np.float64)
    ut = check_logits(as_array(logits_teacher, "logits_teacher"), "logits_teacher", like=us).astype(np.float64)
    p, q = (ut, us) if direction == "teacher_student" else (us, ut)
    t = float(temperature)
    return math.fsum(kl_rows(p, q, t, scale=t)) / len(us)  # T^2 inside: neither T^2 nor KL under/overflows
