r"""Hinton's logit distillation loss, float64 (THEORY.md §5.7).

The KL divergence between two softmaxes is a difference of nearly equal numbers when the logits are
close (the student at the teacher). The reference avoids that cancellation: it forms the logit gap
exactly (TwoSum), removes its per-row constant before dividing by T, and sums the non-negative terms
of the f-divergence form :math:`\mathrm{KL}(p\|q)=\sum_c q_c\,\varphi(\log p_c-\log q_c)`,
:math:`\varphi(r)=re^r-e^r+1\ge0`, so the value keeps its relative accuracy down to 0.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import check_choice, check_positive, _all_finite, _is_floating

DIRECTIONS = ("teacher_student", "student_teacher")

# phi(r) = sum_{k>=2} (k-1)/k! r^k, used for |r| < 1 (truncation below 1e-19 relative).
_PHI_COEFFS = [(k - 1) / math.factorial(k) for k in range(2, 24)]


def check_logits(u, name: str, like=None):
    """(batch, classes) floating, finite logits; the same shape as ``like`` when given."""
    if getattr(u, "ndim", None) != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (batch, n_classes); got shape "
                         f"{tuple(getattr(u, 'shape', ()))}")
    if not _is_floating(u):
        raise ValueError(f"{name} must have a floating dtype; got {u.dtype}")
    if u.shape[0] == 0 or u.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one class; got shape {tuple(u.shape)}")
    if like is not None and tuple(u.shape) != tuple(like.shape):
        raise ValueError(f"{name} has shape {tuple(u.shape)} but logits_student has {tuple(like.shape)}: "
                         "one row per sample and the same classes on both sides")
    if not _all_finite(u):
        raise ValueError(f"{name} contains NaN or inf")
    return u


def check_kd_params(temperature, direction):
    check_positive(temperature, "temperature")
    check_choice(direction, "direction", DIRECTIONS)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax, max-shifted."""
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.sum(np.exp(z), 1, keepdims=True))


def _phi_times_q(r: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    """q·phi(r) with p = q·e^r: the series for |r| < 1, else p(r - 1) + q (no overflow of e^r)."""
    small = np.abs(r) < 1
    rs = np.where(small, r, 0.0)
    series = np.zeros_like(r)
    for c in reversed(_PHI_COEFFS):
        series = (series + c) * rs
    series *= rs
    q = np.exp(log_q)
    large = np.exp(log_q + r) * (r - 1.0) + q
    return np.where(small, q * series, large)


def kl_rows(u_p: np.ndarray, u_q: np.ndarray, temperature: float) -> np.ndarray:
    r"""Per-row :math:`\mathrm{KL}(\mathrm{softmax}(u_p/T)\,\|\,\mathrm{softmax}(u_q/T))`, accurate to a few
    ulps relative also when the two rows are nearly equal or differ by a constant."""
    hi = u_p - u_q  # TwoSum: hi + lo == u_p - u_q exactly
    bv = hi - u_p
    lo = (u_p - (hi - bv)) + (-u_q - bv)
    log_q = log_softmax(u_q / temperature)
    # any per-row constant is exact to remove: take the gap at the most probable class of q, so
    # that rows differing by a constant give r == 0 exactly
    c0 = np.take_along_axis(hi, np.argmax(log_q, 1)[:, None], 1)
    r = ((hi - c0) + lo) / temperature
    log_z = np.log1p(np.sum(np.exp(log_q) * np.expm1(r), 1, keepdims=True))
    terms = _phi_times_q(r - log_z, log_q)  # r - log Z = log p_c - log q_c
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

    >>> import numpy as np
    >>> float(hinton_kd(np.array([[0.0, 1.0]]), np.array([[1.0, 2.0]])))
    0.0
    """
    check_kd_params(temperature, direction)
    us = check_logits(np.asarray(logits_student), "logits_student").astype(np.float64)
    ut = check_logits(np.asarray(logits_teacher), "logits_teacher", like=us).astype(np.float64)
    p, q = (ut, us) if direction == "teacher_student" else (us, ut)
    t = float(temperature)
    return t * t * math.fsum(kl_rows(p, q, t)) / len(us)
