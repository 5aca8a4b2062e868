"""Variants of Hinton's logit distillation loss T^2 KL(softmax(z_t / T) || softmax(z_s / T))."""

from __future__ import annotations

import math

from ...reference.logit import kl_rows
from ._common import NotApplicable, other_choices, param, scaled, with_params

_DIR = {"teacher_student": "KL(teacher || student) (Hinton's direction)",
        "student_teacher": "KL(student || teacher) (the paper's code, the reverse of Hinton's)"}


def _t(ex) -> float:
    return float(param("hinton_kd", ex, "temperature"))


def _teacher_untempered(ex):
    """T^2 KL with the teacher's softmax taken at T = 1 (the student's at T)."""
    us, ut = ex.args
    t = _t(ex)
    if t == 1:
        raise NotApplicable
    if param("hinton_kd", ex, "direction") == "teacher_student":
        rows = kl_rows(ut * t, us, t)
    else:
        rows = kl_rows(us, ut * t, t)
    return t * t * math.fsum(rows) / len(us)


hinton_kd = {
    **other_choices("hinton_kd", "direction", ("teacher_student", "student_teacher"), _DIR.get),
    "missing_T2": ("the T^2 factor left out", scaled("hinton_kd", lambda ex: 1 / _t(ex) ** 2)),
    "T_not_T2": ("T instead of T^2", scaled("hinton_kd", lambda ex: 1 / _t(ex))),
    "batch_sum": ("sum over the batch instead of the mean", scaled("hinton_kd", lambda ex: len(ex.args[0]))),
    "mean_over_classes": ("mean over batch and classes (F.kl_div reduction='mean')",
                          scaled("hinton_kd", lambda ex: 1 / ex.args[0].shape[1])),
    "temperature_ignored": ("temperature ignored (T = 1, no T^2)", with_params("hinton_kd", temperature=1.0)),
    "T2_without_tempering": ("T^2 times the KL of the untempered softmaxes",
                             lambda ex: _t(ex) ** 2 * with_params("hinton_kd", temperature=1.0)(ex)),
    "teacher_untempered": ("the teacher's softmax without the temperature", _teacher_untempered),
}
