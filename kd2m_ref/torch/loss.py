"""``KD2MLoss``: one ``nn.Module`` that trains a student with any distance of the registry.

The metric is looked up by key in :data:`kd2m_ref.registry.METRICS` when the module is built (the registry
names torch callables by dotted path, so there is no import cycle). A metric whose spec ``needs``
``"logits"`` compares the logits (``hinton_kd``); every other metric compares the features.
"""

from __future__ import annotations

import inspect
import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .._conventions import check_number, check_params, check_positive
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


def _calibration_values(values, name: str) -> list[float]:
    """``values`` (a number, a 0-d tensor, or a sequence / 1-d tensor or array of them) as a list of floats,
    each finite and >= 0; a ``ValueError`` naming ``name`` otherwise."""
    if isinstance(values, (torch.Tensor, np.ndarray)):
        if values.ndim > 1:
            raise ValueError(f"{name} must be a number or a 1-d sequence of numbers; got shape {tuple(values.shape)}")
        values = values.reshape(-1)
        values = values.detach().cpu().tolist() if isinstance(values, torch.Tensor) else values.tolist()
    elif isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        values = [values]  # one number or 0-d tensor: one batch
    values = list(values)
    if len(values) == 0:
        raise ValueError(f"{name} is empty: give the value of at least one batch")
    out = []
    for i, value in enumerate(values):
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise ValueError(f"{name}[{i}] must be a number or a 0-d tensor; got a tensor of shape "
                                 f"{tuple(value.shape)} (pass one value per batch)")
            value = value.detach().reshape(()).item()
        value = check_number(value, f"{name}[{i}]")
        if not math.isfinite(value):
            raise ValueError(f"{name}[{i}] is {value}: every value must be finite (a NaN or inf at "
                             "initialisation means the model or the distance is broken, not a scale)")
        if value < 0:
            hint = (" (an unbiased estimator, e.g. mmd with estimator='unbiased', can go below 0 when the "
                    "student is already close to the teacher: calibrate with the biased one)"
                    if name == "distances" else "")
            raise ValueError(f"{name}[{i}] = {value!r} is negative: every value must be >= 0{hint}")
        out.append(value)
    return out


def calibrate_weight(cross_entropies, distances, rho: float = 1.0, *, zero_distance="raise") -> float:
    r"""The weight :math:`\lambda=\rho\,\overline{\mathrm{CE}}_0/\overline D_0` of the distillation term.

    :math:`\overline{\mathrm{CE}}_0` and :math:`\overline D_0` are the means of the cross-entropy and of
    the unweighted distance (:meth:`KD2MLoss.distance`) over the first few batches, measured at the
    student's initialisation. With this weight the distillation term starts at ``rho`` times the
    cross-entropy, whatever the scale of the distance (a squared W2 of 512-d features and an MMD² <= 2
    differ by orders of magnitude, so one fixed :math:`\lambda` suits no two keys).

    Parameters
    ----------
    cross_entropies, distances : list of float
        One value per batch, in the same order and of the same length: a list or tuple of numbers or
        0-d tensors, or a 1-d tensor or array (a single number or 0-d tensor counts as one batch).
        Every value must be finite and >= 0.
    rho : float
        :math:`\rho > 0`, the ratio of the two terms at initialisation (1: they start equal).
    zero_distance : ``"raise"`` or float
        What to do when every distance is 0 (the student already matches the teacher, so no ratio
        exists): ``"raise"`` (default) raises a ``ValueError``; a number ``>= 0`` is returned as the weight.

    Returns
    -------
    float
        :math:`\lambda`, computed in float64 from the float64 means (``numpy.mean``).

    Examples
    --------
    >>> from kd2m_ref.torch import calibrate_weight
    >>> calibrate_weight([2.3, 2.2], [40.0, 50.0], rho=1.0)  # (2.3 + 2.2) / (40 + 50)
    0.05
    >>> import torch
    >>> calibrate_weight(torch.tensor(2.0), torch.tensor(0.5), rho=3.0)  # one batch, 0-d tensors
    12.0
    """
    rho = check_positive(rho, "rho")
    if not (isinstance(zero_distance, str) and zero_distance == "raise"):
        if isinstance(zero_distance, str):
            raise ValueError(f"zero_distance must be 'raise' or a number >= 0; got {zero_distance!r}")
        zero_distance = check_positive(zero_distance, "zero_distance", strict=False)
    ce = _calibration_values(cross_entropies, "cross_entropies")
    dist = _calibration_values(distances, "distances")
    if len(ce) != len(dist):
        raise ValueError(f"cross_entropies and distances must have one value per batch each; got {len(ce)} "
                         f"and {len(dist)} values")
    mean_ce, mean_d = float(np.mean(ce)), float(np.mean(dist))
    if mean_d == 0:
        if zero_distance == "raise":
            raise ValueError(f"distances are all 0 over the {len(dist)} calibration batch(es): the student "
                             "already matches the teacher, so rho * CE0 / D0 does not exist; calibrate "
                             "before copying teacher weights into the student, or pass zero_distance=<weight>")
        return zero_distance
    return rho * mean_ce / mean_d


class KD2MLoss(torch.nn.Module):
    r"""Distillation term :math:`\lambda\,D(\text{student}, \text{teacher})` for a registry metric.

    Parameters
    ----------
    metric : str
        A key of :data:`kd2m_ref.registry.METRICS` (``"wasserstein"``, ``"mmd"``, ``"hinton_kd"``, ...).
    weight : float
        :math:`\lambda`, the factor of the distance (the paper's code uses ``1e-4`` with ResNet
        features; no default, since the right scale depends on the features). :func:`calibrate_weight`
        sets it from the first batches: :math:`\lambda=\rho\,\overline{\mathrm{CE}}_0/\overline D_0`.
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


__all__ = ["KD2MLoss", "KD2MTerms", "calibrate_weight"]
