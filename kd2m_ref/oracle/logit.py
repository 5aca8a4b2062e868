r"""High-precision (mpmath) Hinton KD loss: T^2 times the batch mean of KL between tempered softmaxes.

Each row's KL is the naive :math:`\sum_c p_c(\log p_c-\log q_c)`, which cancels when the rows are close;
the working precision is doubled from ``DPS`` until at least 25 digits of the result survive the
cancellation (error scale :math:`\sum_c p_c(|\log p_c|+|\log q_c|+1)`). Rows whose logit gap is
exactly constant have KL exactly 0 (shift invariance).
"""

from __future__ import annotations

import mpmath as mp

from .ot import DPS, _mp_rows


def _log_softmax(row, t):
    """log softmax(row / t) from the exact gaps to the row maximum: the largest entry is -log1p(...),
    accurate also when the softmax saturates."""
    top = max(row)
    z = [(v - top) / t for v in row]
    lse = mp.log1p(mp.fsum(mp.exp(v) for v in z if v != 0) + (sum(1 for v in z if v == 0) - 1))
    return [v - lse for v in z]


def hinton_kd(logits_student, logits_teacher, *, temperature=1.0, direction="teacher_student"):
    r""":math:`T^2\frac1B\sum_b\mathrm{KL}(p_b\|q_b)` at ``DPS`` digits, straight from
    :math:`\sum_c p_c(\log p_c-\log q_c)`; ``direction`` as in :func:`kd2m_ref.reference.hinton_kd`."""
    with mp.workdps(DPS):
        t = mp.mpf(float(temperature))
        us, ut = _mp_rows(logits_student), _mp_rows(logits_teacher)
        p_rows, q_rows = (ut, us) if direction == "teacher_student" else (us, ut)
        total = mp.fsum(_row_kl(up, uq, t) for up, uq in zip(p_rows, q_rows))
        return t**2 * total / len(us)


def _row_kl(up, uq, t, max_dps=2000):
    if len({a - b for a, b in zip(up, uq)}) == 1:  # exact at DPS: float inputs differ by < 2^166
        return mp.mpf(0)
    dps = DPS
    while dps <= max_dps:
        with mp.workdps(dps):
            lp, lq = _log_softmax(up, t), _log_softmax(uq, t)
            value = mp.fsum(mp.exp(a) * (a - b) for a, b in zip(lp, lq))
            mass = mp.fsum(mp.exp(a) * (abs(a) + abs(b) + 1) for a, b in zip(lp, lq))  # error scale
        if abs(value) > mass * mp.mpf(10) ** (25 - dps):
            return value
        dps *= 2
    raise ArithmeticError("KL oracle: more than 2000 digits lost to cancellation")


__all__ = ["hinton_kd"]
