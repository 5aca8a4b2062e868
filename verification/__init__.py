"""The project's evidence: experiments that check Lemma 1 and Theorem 3.1 of KD2M.

One folder per experiment, each a package with the same entry points (``PROFILES``, ``run``,
``summary``, ``figures``, ``violations``), dispatched by ``kd2m-ref verify <name>``:

* ``exact``: the inequality chain on random exact discrete measures;
* ``synthetic``: population experiments (Gaussian and mixture inputs, label scrambles, training);
* ``resnet``: ResNet teacher -> student distillation with every loss, bounds on held-out data;
* ``distributed_bias``: the local-batch bias of a distance under data parallelism;
* ``crosscheck``: the cross-check kit against wrong (mutants) and correct (gallery) implementations.

Shared: ``distances`` (MMD, OT costs, named for what they return), ``functions`` (RKHS functions and
the softmax head), ``stats`` (confidence bounds, family-wise levels), ``results`` (provenance, JSON).
Results go to ``verification/results/<profile>/``. This package lives at the repository root,
beside ``kd2m_ref`` and not inside it; ``kd2m_ref`` imports it only from the ``verify`` subcommand.
"""

from __future__ import annotations

import importlib
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
EXPERIMENTS = ("exact", "synthetic", "resnet", "distributed_bias", "crosscheck")


def experiment(name: str):
    """The package of experiment ``name`` (one of :data:`EXPERIMENTS`)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {', '.join(EXPERIMENTS)}; got {name!r}")
    return importlib.import_module(f"{__name__}.{name}")
