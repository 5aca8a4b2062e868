r"""High-precision (mpmath) Hinton KD loss: T^2 times the batch mean of KL between tempered softmaxes.

Each row's KL is the naive :math:`\sum_c p_c(\log p_c-\log q_c)`, which cancels when the rows are close;
the working precision is doubled from ``DPS`` until at least 25 digits of the result survive the
cancellation (error scale :math:`\sum_c p_c(|\log p_c|+|\log q_c|+1)(1+|\log p_c-\log q_c|)`), or
until that error bound is below ``1e-400`` (far under float64's smallest subnormal, 4.9e-324, even
times :math:`T^2 \le 10^{12}`): a KL that small, e.g. :math:`e^{-5000}` for two saturated softmaxes that
differ only in a class of probability :math:`e^{-5000}`, is then returned to that absolute accuracy
rather than to 25 digits, which would take thousands. Rows whose logit gap is exactly constant have KL
exactly 0 (shift invariance).
"""

from __future__ import annotations

import mpmath as mp

from .ot import DPS, _mp_rows

#: a row's KL is returned once its error bound is below this (absolute; see the module docstring)
ABS_FLOOR = mp.mpf(10) ** -400


def _log_softmax(row, t):
    """log softmax(row / t) from the exact gaps to the row maximum: the largest entry is -log1p(...),
    accurate also when the softmax saturates."""
    top = max(row)
    z = [(v - top) / t for v in row]
    lse = mp.log1p(mp.fsum(mp.exp(v) for v in z if v != 0) + (sum(1 for v in z if v == 0) - 1))
    return [v - lse for v in z]


def hinton_kd(logits_student, logits_teacher, *, temperature=1.0, direction="teacher_student"):
    r""":math:`T^2\frac1B\sum_b\mathrm{KL}(p_b\|q_b)` at ``DPS`` digits, straight from
    :math:`\sum_c p_c(\log p_c-\log q_c)`; ``direction`` as in :func:`kd2m_ref.reference.hinton_kd`.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.oracle import hinton_kd
    >>> student = np.array([[0.0, 0.0]])
    >>> teacher = np.array([[0.0, np.log(3.0)]])
    >>> round(float(hinton_kd(student, teacher)), 4)
    0.1308
    >>> float(hinton_kd(student, student + 1.0))  # exactly 0
    0.0
    """
    with mp.workdps(DPS):
        t = mp.mpf(float(temperature))
        us, ut = _mp_rows(logits_student), _mp_rows(logits_teacher)
        p_rows, q_rows = (ut, us) if direction == "teacher_student" else (us, ut)
        total = mp.fsum(_row_kl(up, uq, t) for up, uq in zip(p_rows, q_rows))
        return t**2 * total / len(us)


def _row_kl(up, uq, t, max_dps=2000):
    # exactly constant gap (exact differences: at DPS digits 1 - 5e-111 would round to 1, a false 0)
    if len({mp.fsub(a, b, exact=True) for a, b in zip(up, uq)}) == 1:
        return mp.mpf(0)
    dps = DPS
    while dps <= max_dps:
        with mp.workdps(dps):
            lp, lq = _log_softmax(up, t), _log_softmax(uq, t)
            value = mp.fsum(mp.exp(a) * (a - b) for a, b in zip(lp, lq))
            # error scale: the rounding of each log-softmax entry, also as amplified through exp(a)
            mass = mp.fsum(mp.exp(a) * (abs(a) + abs(b) + 1) * (1 + abs(a - b)) for a, b in zip(lp, lq))
            bound = mass * mp.mpf(10) ** -dps
        if abs(value) > bound * mp.mpf(10) ** 25 or bound < ABS_FLOOR:
            return value
        dps *= 2
    raise ArithmeticError("KL oracle: more than 2000 digits lost to cancellation")


__all__ = ["hinton_kd"]
