"""Hinton's logit distillation loss in torch; conventions of :func:`kd2m_ref.reference.hinton_kd`."""

from __future__ import annotations

import torch

from .._checks import check_logits
from .._conventions import check_hinton_kd_params
from ._common import check_tensor, float32_for_low_precision


@float32_for_low_precision
def hinton_kd(logits_student, logits_teacher, *, temperature: float = 1.0,
              direction: str = "teacher_student") -> torch.Tensor:
    r""":math:`\frac{T^2}{B}\sum_b \mathrm{KL}(p_b\|q_b)` between tempered softmaxes, through ``log_softmax``.

    ``direction="teacher_student"`` (default, Hinton): KL(teacher || student); ``"student_teacher"``:
    the paper's code. The gradient w.r.t. the student logits is :math:`T(p_S - p_T)/B` per row in the
    default direction. Returns a 0-d tensor of the input's dtype and device.

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import hinton_kd
    >>> student = torch.tensor([[0.0, 0.0]])
    >>> teacher = torch.tensor([[0.0, 1.0986]])  # p_T = (1/4, 3/4)
    >>> round(hinton_kd(student, teacher).item(), 4)
    0.1308
    >>> round(hinton_kd(student, student + 1.0).item(), 4)  # shift: same p
    0.0
    """
    check_hinton_kd_params(temperature, direction)
    check_logits(check_tensor(logits_student, "logits_student"), "logits_student")
    check_logits(check_tensor(logits_teacher, "logits_teacher"), "logits_teacher", like=logits_student)
    if logits_teacher.dtype != logits_student.dtype or logits_teacher.device != logits_student.device:
        raise ValueError("logits_student and logits_teacher must share dtype and device; got "
                         f"{logits_student.dtype}/{logits_student.device} and "
                         f"{logits_teacher.dtype}/{logits_teacher.device}")
    t = float(temperature)
    log_s = torch.log_softmax(logits_student / t, dim=1)
    log_t = torch.log_softmax(logits_teacher / t, dim=1)
    log_p, log_q = (log_t, log_s) if direction == "teacher_student" else (log_s, log_t)
    return t * t * (log_p.exp() * (log_p - log_q)).sum() / len(log_p)


__all__ = ["hinton_kd"]
