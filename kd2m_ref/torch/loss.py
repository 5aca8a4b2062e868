"""``KD2MLoss``: one ``nn.Module`` that trains a student with any distance of the registry.

The metric is looked up by key in :data:`kd2m_ref.METRICS` when the module is built (the registry
names torch callables by dotted path, so there is no import cycle). A metric whose spec ``needs``
``"logits"`` compares the logits (``hinton_kd``); every other metric compares the features.
"""

from __future__ import annotations

import inspect
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..registry import METRICS


class KD2MTerms(NamedTuple):
    """The parts of the training objective returned by :meth:`KD2MLoss.total`."""

    total: torch.Tensor  #: ce_weight * cross_entropy + distillation
    cross_entropy: torch.Tensor  #: CE(logits_student, labels)
    distillation: torch.Tensor  #: weight * D


def _at_least_float32(*tensors):
    """Cast floating tensors to a common dtype of at least float32 (float16/bfloat16 -> float32)."""
    present = [t for t in tensors if t is not None]
    dtype = torch.float32
    for t in present:
        if t.is_floating_point():
            dtype = torch.promote_types(dtype, t.dtype)
    return [t if t is None or not t.is_floating_point() else t.to(dtype) for t in tensors]


class KD2MLoss(torch.nn.Module):
    r"""Distillation term :math:`\lambda\,D(\text{student}, \text{teacher})` for a registry metric.

    Parameters
    ----------
    metric : str
        A key of :data:`kd2m_ref.METRICS` (``"wasserstein"``, ``"mmd"``, ``"hinton_kd"``, ...).
    weight : float
        :math:`\lambda`, the factor of the distance (the paper's code uses ``1e-4`` with ResNet
        features; no default, since the right scale depends on the features).
    detach_teacher : bool, default True
        Detach the teacher's features and logits, so no gradient reaches the teacher.
    **metric_params
        Keywords of the metric (``p``, ``kernel``, ``temperature``, ``weights``, ...), checked against
        the signature of its torch function.

    The forward pass returns ``weight * D`` as a 0-d tensor. Under ``torch.autocast`` (or with
    float16/bfloat16 inputs) the distance is computed in float32 with autocast disabled (float64
    inputs stay float64). Labels are passed to the metric as ``ys`` (``yt`` defaults to ``ys``: student
    and teacher see the same inputs).

    Examples
    --------
    >>> import torch
    >>> from kd2m_ref.torch import KD2MLoss
    >>> loss = KD2MLoss("mmd", weight=0.5, kernel="gaussian")
    >>> fs, ft = torch.zeros(4, 3, requires_grad=True), torch.ones(4, 3)
    >>> value = loss(fs, ft)
    >>> value.backward()
    """

    def __init__(self, metric: str, weight: float, *, detach_teacher: bool = True, **metric_params):
        super().__init__()
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; registry keys: {sorted(METRICS)}")
        spec = METRICS[metric]
        if spec.torch_path is None:
            raise ValueError(f"metric {metric!r} has no torch implementation; keys with one: "
                             f"{sorted(k for k, s in METRICS.items() if s.torch_path)}")
        weight = float(weight)
        if not weight == weight or weight in (float("inf"), float("-inf")):
            raise ValueError(f"weight must be a finite number; got {weight!r}")
        fn = spec.torch
        accepted = {name for name, p in inspect.signature(fn).parameters.items()
                    if p.kind is inspect.Parameter.KEYWORD_ONLY} - {"ys", "yt"}
        unknown = set(metric_params) - accepted
        if unknown:
            raise ValueError(f"metric {metric!r} does not take {sorted(unknown)}; its parameters: {sorted(accepted)}")
        self.metric, self.weight, self.detach_teacher = metric, weight, bool(detach_teacher)
        self.metric_params = dict(metric_params)
        self._spec, self._fn = spec, fn

    def extra_repr(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self.metric_params.items())
        return f"{self.metric!r}, weight={self.weight}{params}"

    def distance(self, features_student=None, features_teacher=None, labels=None, logits_student=None,
                 logits_teacher=None) -> torch.Tensor:
        """The unweighted distance D (same arguments as :meth:`forward`)."""
        needs = self._spec.needs
        if "labels" in needs and labels is None:
            raise ValueError(f"metric {self.metric!r} needs labels: pass labels= (class indices of the batch)")
        if "logits" in needs:
            if logits_student is None or logits_teacher is None:
                raise ValueError(f"metric {self.metric!r} needs logits: pass logits_student= and logits_teacher=")
            student, teacher = logits_student, logits_teacher
        else:
            if features_student is None or features_teacher is None:
                raise ValueError(f"metric {self.metric!r} compares features: pass features_student and "
                                 "features_teacher")
            student, teacher = features_student, features_teacher
        if self.detach_teacher:
            teacher = teacher.detach()
        student, teacher = _at_least_float32(student, teacher)
        kwargs = dict(self.metric_params)
        if "labels" in needs:
            kwargs["ys"] = labels
        with torch.autocast(device_type=student.device.type, enabled=False):
            return self._fn(student, teacher, **kwargs)

    def forward(self, features_student=None, features_teacher=None, labels=None, logits_student=None,
                logits_teacher=None) -> torch.Tensor:
        """``weight * D(student, teacher)``: a 0-d tensor, float32 or float64."""
        return self.weight * self.distance(features_student, features_teacher, labels, logits_student,
                                           logits_teacher)

    def total(self, logits_student, labels, features_student=None, features_teacher=None, logits_teacher=None,
              *, ce_weight: float = 1.0) -> KD2MTerms:
        r"""The training objective :math:`\mathrm{ce\_weight}\cdot\mathrm{CE}(\text{logits}_S, y) + \lambda D`.

        Cross-entropy is the batch mean of ``F.cross_entropy`` (computed in float32 or better).
        Returns :class:`KD2MTerms` ``(total, cross_entropy, distillation)``; call ``.total.backward()``.
        """
        distill = self(features_student, features_teacher, labels, logits_student, logits_teacher)
        (logits32,) = _at_least_float32(logits_student)
        with torch.autocast(device_type=logits32.device.type, enabled=False):
            ce = F.cross_entropy(logits32, labels)
        return KD2MTerms(ce_weight * ce + distill, ce, distill)


__all__ = ["KD2MLoss", "KD2MTerms"]
