"""``KD2MLoss``: one ``nn.Module`` that trains a student with any distance of the registry.

The metric is looked up by key in :data:`kd2m_ref.registry.METRICS` when the module is built (the registry
names torch callables by dotted path, so there is no import cycle). A metric whose spec ``needs``
``"logits"`` compares the logits (``hinton_kd``); every other metric compares the features.
"""

from __future__ import annotations

import inspect
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .._conventions import check_params, check_positive
from ..registry import METRICS
from .distributed import all_gather_rows, check_sync


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
        A key of :data:`kd2m_ref.registry.METRICS` (``"wasserstein"``, ``"mmd"``, ``"hinton_kd"``, ...).
    weight : float
        :math:`\lambda`, the factor of the distance (the paper's code uses ``1e-4`` with ResNet
        features; no default, since the right scale depends on the features).
    detach_teacher : bool
        Detach the teacher's features and logits, so no gradient reaches the teacher (default True).
    sync : str
        ``"none"`` (default): the distance of this process's batch. ``"global"``: under ``torch.distributed``,
        the compared tensors (and labels) are gathered over the default process group with a
        differentiable all-gather (:func:`kd2m_ref.torch.distributed.all_gather_rows`; uneven shards
        allowed) and the distance is computed on the global batch, the same value on every rank. Each
        rank's shard receives ``world_size`` times its gradient, so that DDP's gradient averaging gives
        exactly the single-process gradient of D on the concatenated batch. Use it for every metric
        that is not a mean of per-sample terms (OT, Gaussian fits, class-conditional terms, MMD);
        ``hinton_kd`` is such a mean and needs no sync with even shards. Cost: every rank holds the
        gathered batch and computes D on it; one all-gather per tensor forward, one reduce-scatter
        (all-reduce off NCCL) backward. Without an initialised process group ``"global"`` is the
        local batch. Sample weights ``a``/``b`` given as metric parameters refer to the gathered
        batch (rank order).
    **metric_params
        Keywords of the metric (``p``, ``kernel``, ``temperature``, ``weights``, ...), checked against
        the signature of its torch function.

    Notes
    -----
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

    def __init__(self, metric: str, weight: float, *, detach_teacher: bool = True, sync: str = "none",
                 **metric_params):
        super().__init__()
        check_sync(sync)
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; registry keys: {sorted(METRICS)}")
        spec = METRICS[metric]
        if spec.torch_path is None:
            raise ValueError(f"metric {metric!r} has no torch implementation; keys with one: "
                             f"{sorted(k for k, s in METRICS.items() if s.torch_path)}")
        try:
            weight = check_positive(weight, "weight", strict=False)
        except ValueError:
            raise ValueError(f"weight (λ) must be a finite non-negative number; got {weight!r}") from None
        fn = spec.torch
        accepted = {name for name, p in inspect.signature(fn).parameters.items()
                    if p.kind is inspect.Parameter.KEYWORD_ONLY} - {"ys", "yt"}
        unknown = set(metric_params) - accepted
        if unknown:
            raise ValueError(f"metric {metric!r} does not take {sorted(unknown)}; its parameters: {sorted(accepted)}")
        check_params(metric, **metric_params)  # at construction, not at the first forward
        self.metric, self.weight, self.detach_teacher = metric, weight, bool(detach_teacher)
        self.sync = sync
        self.metric_params = dict(metric_params)
        self._spec, self._fn = spec, fn

    def extra_repr(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self.metric_params.items())
        sync = "" if self.sync == "none" else f", sync={self.sync!r}"
        return f"{self.metric!r}, weight={self.weight}{sync}{params}"

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
        if self.sync == "global":
            if "labels" in needs:
                student, teacher, labels = all_gather_rows(student, teacher,
                                                           torch.as_tensor(labels, device=student.device))
            else:
                student, teacher = all_gather_rows(student, teacher)
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

        Cross-entropy is the batch mean of ``F.cross_entropy`` (computed in float32 or better), on the
        local batch also with ``sync="global"``: DDP's gradient averaging makes it the global mean when
        the shards have equal sizes.
        Returns :class:`KD2MTerms` ``(total, cross_entropy, distillation)``; call ``.total.backward()``.
        """
        if labels is None:
            raise ValueError("total() needs labels: the cross-entropy term compares logits_student with the "
                             "class indices of the batch")
        distill = self(features_student, features_teacher, labels, logits_student, logits_teacher)
        (logits32,) = _at_least_float32(logits_student)
        with torch.autocast(device_type=logits32.device.type, enabled=False):
            ce = F.cross_entropy(logits32, labels)
        return KD2MTerms(ce_weight * ce + distill, ce, distill)


__all__ = ["KD2MLoss", "KD2MTerms"]
