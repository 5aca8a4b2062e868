r"""The training protocol: teacher, CE-only baseline student and one student per distillation loss.

Every arm uses the same recipe (:class:`Recipe`): SGD with momentum and weight decay, a per-step
cosine learning rate, the same augmentation, and, for a given seed, the same student
initialisation and the same batch order and augmentation draws (each epoch's generator is seeded by
``(seed, epoch)``). Only the loss differs: ``CE + lambda * D`` through
:class:`kd2m_ref.torch.KD2MLoss`, with the frozen teacher in eval mode.

**Choice of lambda** (:func:`calibrate_weight`): the distances differ in scale by orders of
magnitude (squared W2 of 512-d features vs a KL vs an MMD^2 <= 2), so one fixed lambda (the paper's
code uses 1e-4) gives some losses no effect and lets others swamp the cross-entropy. We set
:math:`\lambda=\rho\,\overline{\mathrm{CE}}_0/\overline D_0`, with both means taken over the first
``calibration_batches`` training batches of epoch 0, at the student's initialisation: the
distillation term starts at ``rho`` times the cross-entropy, for every loss; the experiment selects
``rho`` per loss from one grid on validation data. The paper's recipe instead fixes
:math:`\lambda=\rho\cdot` ``Recipe.fixed_lambda`` (1e-4 in the paper, with ``rho = 1``).

Checkpoints (model, optimiser, history, lambda) are written after every epoch; a run with a
checkpoint resumes after its last finished epoch and gives bit-identical weights to an
uninterrupted run on the same device and thread count.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from kd2m_ref.torch import KD2MLoss
from kd2m_ref.torch import calibrate_weight as lambda_rule

from .data import ImageData, augment, normalise
from .models import ResNet
from . import parallel

#: The losses of the paper's Table 1, then the two reference losses. Parameters follow the paper's
#: code where it speaks (squared costs, diagonal Gaussians, KL(student || teacher), mean-distance
#: RBF bandwidth); ``beta`` of the joint loss is set per teacher (see :func:`loss_params`).
LOSSES = {
    "wasserstein": {"p": 2.0},
    "class_conditional_wasserstein": {"p": 2.0, "weights": "uniform"},
    "joint_wasserstein": {"p": 2.0, "label_cost": "onehot"},
    "gaussian_wasserstein": {"covariance": "diag"},
    "gaussian_kl": {"covariance": "diag", "eps": 1e-4, "direction": "student_teacher"},
    "class_conditional_gaussian_wasserstein": {"covariance": "diag", "weights": "uniform"},
    "mmd": {"kernel": "gaussian", "bandwidth": "mean", "estimator": "biased"},
    "hinton_kd": {"temperature": 4.0, "direction": "teacher_student"},
}


@dataclass(frozen=True)
class Recipe:
    r"""Architecture and optimisation settings shared by every arm (teacher: ``teacher_epochs``).

    ``stem``: ``"cifar"`` or ``"imagenet"`` (:class:`verification.resnet.models.ResNet`).
    ``fixed_lambda``: None for the calibrated rule of :func:`calibrate_weight`, else
    :math:`\lambda=\rho\cdot` ``fixed_lambda``."""

    width: float = 0.0625
    epochs: int = 3
    teacher_epochs: int = 4
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    calibration_batches: int = 4
    teacher_depth: int = 34
    student_depth: int = 18
    stem: str = "cifar"
    fixed_lambda: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class RunState:
    """What a training run returns (and checkpoints)."""

    model: ResNet
    history: list = field(default_factory=list)
    weight: float = 0.0
    calibration: dict = field(default_factory=dict)
    resumed_from_epoch: int = 0


def seed_everything(seed: int) -> None:
    """Seed torch's global generator (model initialisation) and ask for deterministic kernels."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def new_model(depth: int, data: ImageData, recipe: Recipe, seed: int, device="cpu") -> ResNet:
    """A freshly initialised ResNet; the initialisation depends on ``seed`` only."""
    seed_everything(seed)
    return ResNet(depth, data.num_classes, data.in_channels, recipe.width, stem=recipe.stem).to(device)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int):
    """Index batches of one epoch (a permutation seeded by ``(seed, epoch)``; the last partial batch
    is dropped), and the generator for that epoch's augmentation draws."""
    gen = torch.Generator().manual_seed(1_000_003 * seed + epoch)
    order = torch.randperm(n, generator=gen)
    batches = [order[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
    return batches, gen


def learning_rate(recipe: Recipe, step: int, total: int) -> float:
    """Cosine schedule from ``recipe.lr`` to 0 over ``total`` steps."""
    return 0.5 * recipe.lr * (1.0 + math.cos(math.pi * step / total))


def _batch(data: ImageData, idx, gen, device):
    x = augment(data.x_train[idx], data.crop_padding, data.flip, gen)
    return normalise(x.to(device), data), data.y_train[idx].to(device)


def calibrate_weight(student: ResNet, teacher: ResNet, loss: KD2MLoss, data: ImageData, recipe: Recipe,
                     seed: int, rho: float, device="cpu") -> dict:
    r""":math:`\lambda=\rho\,\overline{\mathrm{CE}}_0/\overline D_0` on the first batches of epoch 0
    (a copy of the student in train mode, so its BatchNorm statistics are untouched), by
    :func:`kd2m_ref.torch.calibrate_weight`; weight 0 when every distance is 0."""
    if recipe.fixed_lambda is not None:
        return {"rule": "lambda = rho * fixed_lambda (the paper's recipe)", "rho": rho,
                "fixed_lambda": recipe.fixed_lambda, "weight": rho * recipe.fixed_lambda}
    probe = copy.deepcopy(student).train()
    loss = copy.copy(loss)  # every rank sees the whole calibration batch: no gathering (sync) here
    loss.sync = "none"
    batches, gen = epoch_batches(len(data.y_train), recipe.batch_size, seed, 0)
    ce, dist = [], []
    with torch.no_grad():
        for idx in batches[:recipe.calibration_batches]:
            x, y = _batch(data, idx, gen, device)
            ls, fs = probe(x)
            lt, ft = teacher(x)
            ce.append(float(F.cross_entropy(ls, y)))
            dist.append(float(loss.distance(fs, ft, y, ls, lt)))
    ce0, d0 = float(np.mean(ce)), float(np.mean(dist))
    weight = lambda_rule(ce, dist, rho=rho, zero_distance=0.0)  # D0 = 0: weight 0, the run is CE only
    return {"rule": "lambda = rho * mean CE / mean D over the first calibration batches at initialisation",
            "rho": rho, "ce0": ce0, "d0": d0, "batches": len(ce), "weight": weight}


@torch.no_grad()
def predict(model: ResNet, data: ImageData, device="cpu", batch_size: int = 500, split: str = "test"):
    """``(logits, features, labels)`` of ``split`` (``"test"``, ``"val"`` or ``"train"``) as float64
    NumPy arrays (eval mode, no augmentation)."""
    model.eval()
    splits = {"test": (data.x_test, data.y_test), "val": (data.x_val, data.y_val), "train": (data.x_train, data.y_train)}
    if split not in splits or splits[split][0] is None:
        raise ValueError(f"split must be one of {[k for k, v in splits.items() if v[0] is not None]}; got {split!r}")
    x_all, y_all = splits[split]
    logits, feats = [], []
    for i in range(0, len(y_all), batch_size):
        u, z = model(normalise(x_all[i:i + batch_size].to(device), data))
        logits.append(u.double().cpu())
        feats.append(z.double().cpu())
    return torch.cat(logits).numpy(), torch.cat(feats).numpy(), y_all.numpy()


def _monitor(model, data, device) -> dict:
    """Per-epoch monitoring: accuracy and CE on the validation split when ``data`` has one (the
    experiment's case: the test split is then scored once, at the end), else on the test split."""
    split = "val" if data.x_val is not None else "test"
    u, _, y = predict(model, data, device, split=split)
    return {f"{split}_accuracy": float(np.mean(u.argmax(1) == y)),
            f"{split}_ce": float(F.cross_entropy(torch.from_numpy(u), torch.from_numpy(y)))}


def train(model: ResNet, data: ImageData, recipe: Recipe, *, seed: int, epochs: int, teacher: ResNet | None = None,
          loss: KD2MLoss | None = None, checkpoint: Path | None = None, device="cpu", desc: str = "train",
          progress: bool = True, stop_after_epoch: int | None = None, calibration: dict | None = None) -> RunState:
    """Train ``model`` with ``CE (+ loss.weight * D(student, teacher))``; return its :class:`RunState`.

    ``loss=None`` trains with cross-entropy only (teacher and baseline). ``loss.weight`` must already be
    set (see :func:`calibrate_weight`). With ``checkpoint``, state is saved after every epoch and a
    run resumes from it (restoring ``loss.weight``). ``stop_after_epoch`` ends early (for resume tests),
    leaving the checkpoint. ``calibration`` (the record of :func:`calibrate_weight`) is kept in the state.
    The history holds, per epoch: mean training CE, mean distance D, mean total loss, learning rate,
    and the accuracy and CE of :func:`_monitor`.
    """
    from tqdm.auto import tqdm

    state = RunState(model, weight=0.0 if loss is None else loss.weight, calibration=dict(calibration or {}))
    net = parallel.wrap(model)  # DDP under torchrun (verification.resnet.parallel); the model itself otherwise
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    start = 0
    if checkpoint is not None and Path(checkpoint).is_file():
        saved = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state.history, start = saved["history"], saved["epoch"]
        state.weight, state.calibration, state.resumed_from_epoch = saved["weight"], saved["calibration"], start
        if loss is not None:
            loss.weight = state.weight
    if teacher is not None:
        teacher.eval().requires_grad_(False)
    n = len(data.y_train)
    steps_per_epoch = n // recipe.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {recipe.batch_size} is larger than the {n} training images: no full batch")
    total = steps_per_epoch * epochs
    last = epochs if stop_after_epoch is None else min(epochs, stop_after_epoch)
    bar = tqdm(total=steps_per_epoch * (last - start), desc=desc, leave=False,
               disable=not progress or not parallel.is_main(), mininterval=1.0)
    for epoch in range(start, last):
        model.train()
        batches, gen = epoch_batches(n, recipe.batch_size, seed, epoch)
        sums = {"ce": 0.0, "distance": 0.0, "total": 0.0}
        for step, idx in enumerate(batches):
            lr = learning_rate(recipe, epoch * steps_per_epoch + step, total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = _batch(data, idx, gen, device)
            x, y = parallel.shard(x), parallel.shard(y)  # this rank's rows of the global batch
            logits_s, feats_s = net(x)
            if loss is None:
                ce = F.cross_entropy(logits_s, y)
                objective, dist = ce, torch.zeros(())
            else:
                with torch.no_grad():
                    logits_t, feats_t = teacher(x)
                terms = loss.total(logits_s, y, feats_s, feats_t, logits_t)
                objective, ce = terms.total, terms.cross_entropy
                dist = terms.distillation / loss.weight if loss.weight else terms.distillation
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            optimizer.step()
            ce_v, dist_v, total_v = parallel.mean(ce, dist, objective)  # global-batch means
            sums["ce"] += ce_v
            sums["distance"] += dist_v
            sums["total"] += total_v
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{total_v:.3f}", refresh=False)
        record = {"epoch": epoch + 1, "lr_end": lr, **{f"train_{k}": v / len(batches) for k, v in sums.items()},
                  **_monitor(model, data, device)}
        state.history.append(record)
        if checkpoint is not None and parallel.is_main():
            Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(str(checkpoint) + ".tmp")
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
                        "history": state.history, "weight": state.weight, "calibration": state.calibration}, tmp)
            tmp.replace(checkpoint)
    bar.close()
    model.eval()
    return state


def loss_params(metric: str, beta: float | None = None) -> dict:
    """Keyword parameters of ``metric`` in this protocol (``beta`` for the joint loss)."""
    params = dict(LOSSES[metric])
    if metric == "joint_wasserstein":
        params["beta"] = float(beta if beta is not None else 1.0)
    return params


def joint_beta(teacher_train_features: np.ndarray, max_points: int = 1000) -> float:
    r"""``beta`` of the joint loss: the median squared distance between teacher training features, so
    that a label mismatch (one-hot cost :math:`\beta\|e_y-e_{y'}\|^2=2\beta`) costs twice a typical
    squared feature distance: label-aware without ignoring the features."""
    from scipy.spatial.distance import pdist

    z = teacher_train_features[:max_points]
    return float(np.median(pdist(z, "sqeuclidean")))
