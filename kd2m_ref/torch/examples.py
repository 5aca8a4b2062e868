"""End-to-end example: distil a small student MLP from a fixed teacher with :class:`KD2MLoss`.

Synthetic labelled data: inputs ``x ~ N(0, I)``, a fixed random teacher MLP, labels = the teacher's
predicted class (so the teacher is right by construction), classes balanced, and class-stratified
minibatches (class-conditional Gaussian metrics need more samples per class than features). The
student, a smaller MLP with the same feature dimension, is trained with ``CE + weight * D`` for any
registry key. Used by the tests (``tests/torch/test_kd2m_loss.py``) and by the book
(``book/kd2m_loss.md``); CPU, seeded, seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..registry import METRICS
from .loss import KD2MLoss, calibrate_weight
from .wasserstein import wasserstein


class MLP(torch.nn.Module):
    """``x -> features -> logits``; ``forward`` returns ``(logits, features)`` as the paper's code does."""

    def __init__(self, d_in: int, hidden: list[int], d_feature: int, n_classes: int):
        super().__init__()
        layers, width = [], d_in
        for h in hidden:
            layers += [torch.nn.Linear(width, h), torch.nn.Tanh()]
            width = h
        self.body = torch.nn.Sequential(*layers, torch.nn.Linear(width, d_feature))
        self.head = torch.nn.Linear(d_feature, n_classes)

    def forward(self, x):
        features = self.body(x)
        return self.head(features), features


@dataclass
class SyntheticTask:
    """Training and held-out inputs with labels, and the fixed teacher."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    teacher: MLP
    n_classes: int
    d_feature: int


def synthetic_task(*, n_train: int = 512, n_test: int = 128, d_in: int = 10, d_feature: int = 8,
                   n_classes: int = 3, seed: int = 0) -> SyntheticTask:
    """A fixed random teacher ``d_in -> 32 -> 32 -> d_feature -> n_classes`` and data labelled by it,
    ``n_train // n_classes`` (``n_test // n_classes``) samples of each class."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    teacher = MLP(d_in, [32, 32], d_feature, n_classes).requires_grad_(False).eval()
    with torch.no_grad():  # features of scale ~ 1 (the student starts visibly away) and confident logits
        teacher.body[-1].weight.mul_(3.0)
        teacher.head.weight.mul_(4.0)
    per_train, per_test = n_train // n_classes, n_test // n_classes
    x = torch.randn(40 * (n_train + n_test), d_in, generator=gen)
    with torch.no_grad():
        teacher.head.bias.sub_(teacher(x)[0].mean(0))  # centre the class scores: no class is rare
        y = teacher(x)[0].argmax(1)
    parts = [torch.nonzero(y == c).flatten()[: per_train + per_test] for c in range(n_classes)]
    if min(len(p) for p in parts) < per_train + per_test:
        raise ValueError("the random teacher predicts a class too rarely; try another seed")
    train = torch.cat([p[:per_train] for p in parts])
    test = torch.cat([p[per_train:] for p in parts])
    return SyntheticTask(x[train], y[train], x[test], y[test], teacher, n_classes, d_feature)


def stratified_batches(y: torch.Tensor, batch_size: int, steps: int, generator: torch.Generator):
    """``steps`` index batches with ``batch_size // n_classes`` samples of each class (drawn without
    replacement within a batch)."""
    classes = torch.unique(y)
    per = batch_size // len(classes)
    pools = [torch.nonzero(y == c).flatten() for c in classes]
    for _ in range(steps):
        yield torch.cat([p[torch.randperm(len(p), generator=generator)[:per]] for p in pools])


@dataclass
class DistillationRun:
    """What :func:`distill` measured. ``gap_*``: exact W2^2 between the student's and the teacher's
    held-out representations that the metric compares (features, or logits for logit metrics);
    ``distance_*``: the metric itself on the held-out batch (unweighted)."""

    metric: str
    params: dict
    weight: float = float("nan")
    total_loss: list[float] = field(default_factory=list)
    distillation: list[float] = field(default_factory=list)
    gap_before: float = float("nan")
    gap_after: float = float("nan")
    distance_before: float = float("nan")
    distance_after: float = float("nan")
    accuracy_after: float = float("nan")


def _held_out(student, task, loss):
    with torch.no_grad():
        ls, fs = student(task.x_test)
        lt, ft = task.teacher(task.x_test)
        distance = loss.distance(fs, ft, task.y_test, ls, lt)
        a, b = (ls, lt) if "logits" in loss._spec.needs else (fs, ft)
        accuracy = float((ls.argmax(1) == task.y_test).float().mean())
        return float(wasserstein(a.double(), b.double())), float(distance), accuracy


# Parameters the demo uses where a default would be slow at this feature scale (squared distances ~ 1-10):
# entropic OT converges in few iterations only when epsilon is comparable to the costs.
DEMO_PARAMS = {"sinkhorn": {"epsilon": 1.0}, "sinkhorn_divergence": {"epsilon": 1.0}}


def distill(metric: str, *, steps: int = 40, batch_size: int = 48, weight: float | None = None,
            balance: float = 10.0, lr: float = 1e-2, seed: int = 0, task: SyntheticTask | None = None,
            **metric_params) -> DistillationRun:
    r"""Train a student ``d_in -> 16 -> d_feature -> n_classes`` with ``CE + weight * D`` (Adam, ``steps``
    class-stratified minibatches of ``batch_size``, seeded) and measure it before and after on held-out data.

    ``weight=None`` picks :math:`\lambda` so that the distillation term starts at ``balance`` times the
    cross-entropy on the first minibatch, by :func:`kd2m_ref.torch.calibrate_weight` with ``rho=balance``
    (weight 1 if that distance is 0). The distances differ in scale by orders of magnitude: a fixed
    :math:`\lambda` would let cross-entropy drive the features for some and not for others.
    ``metric_params`` are added to :data:`DEMO_PARAMS` for the key.

    >>> from kd2m_ref.torch.examples import distill
    >>> run = distill("mmd", steps=5)
    >>> len(run.total_loss)
    5
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; registry keys: {sorted(METRICS)}")
    task = task or synthetic_task(seed=seed)
    torch.manual_seed(seed + 1)
    student = MLP(task.x_train.shape[1], [16], task.d_feature, task.n_classes)
    params = {**DEMO_PARAMS.get(metric, {}), **metric_params}
    loss = KD2MLoss(metric, weight=1.0 if weight is None else weight, **params)
    run = DistillationRun(metric, params, loss.weight)
    run.gap_before, run.distance_before, _ = _held_out(student, task, loss)
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed + 2)
    for step, idx in enumerate(stratified_batches(task.y_train, batch_size, steps, gen)):
        x, y = task.x_train[idx], task.y_train[idx]
        logits_s, feats_s = student(x)
        with torch.no_grad():
            logits_t, feats_t = task.teacher(x)
        if step == 0 and weight is None:
            with torch.no_grad():
                ce0 = torch.nn.functional.cross_entropy(logits_s, y)
                d0 = loss.distance(feats_s, feats_t, y, logits_s, logits_t)
            # lambda = balance * CE0 / D0 on this batch; D0 = 0 (the student already matches): weight 1
            loss.weight = calibrate_weight(ce0, d0, rho=balance, zero_distance=1.0)
            run.weight = loss.weight
        terms = loss.total(logits_s, y, feats_s, feats_t, logits_t)
        optimizer.zero_grad()
        terms.total.backward()
        optimizer.step()
        run.total_loss.append(float(terms.total.detach()))
        run.distillation.append(float(terms.distillation.detach()))
    run.gap_after, run.distance_after, run.accuracy_after = _held_out(student, task, loss)
    return run


__all__ = ["MLP", "DistillationRun", "SyntheticTask", "distill", "stratified_batches", "synthetic_task"]
