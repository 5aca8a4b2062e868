"""Splitting a labelled batch into class blocks, shared by every class-conditional metric.

Class-conditional metrics (paper eq. 3) compute ``sum_c w_c D(P_S^c, P_T^c)``. This module decides
which classes take part and with which weight ``w_c``; the metric itself is computed by the caller.
Labels are never differentiated, so they are handled in NumPy whatever the backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import _to_numpy, check_choice, check_hard_labels

CLASS_WEIGHTS = ("uniform", "prior", "sum")


@dataclass(frozen=True)
class ClassBlock:
    label: int
    index_s: np.ndarray  # rows of xs in this class
    index_t: np.ndarray  # rows of xt in this class
    weight: float


def class_blocks(ys, yt, n_s: int, n_t: int, *, weights: str, a=None) -> list[ClassBlock]:
    """Class blocks and their weights.

    ``uniform``: 1/K over the K classes present in the batch; ``prior``: the source-side mass of the
    class, n_c/n (or the sum of ``a`` over the class, normalised); ``sum``: 1 for every class present
    (the paper's code). A class absent from both sides is skipped; a class present on one side only
    is an error, since its conditional distance is undefined.
    """
    check_choice(weights, "weights", CLASS_WEIGHTS)
    check_hard_labels(ys, "ys", n_s)
    yt = ys if yt is None else yt
    check_hard_labels(yt, "yt", n_t)
    ys_np, yt_np = _to_numpy(ys).astype(np.int64), _to_numpy(yt).astype(np.int64)
    only_s = np.setdiff1d(ys_np, yt_np)
    only_t = np.setdiff1d(yt_np, ys_np)
    if only_s.size or only_t.size:
        side = "ys" if only_s.size else "yt"
        missing = only_s if only_s.size else only_t
        raise ValueError(
            f"class(es) {missing.tolist()} appear in {side} only: each class must be present on both sides "
            "for its conditional distance to be defined"
        )
    classes = np.unique(ys_np)
    mass = np.ones(n_s) if a is None else np.asarray(_to_numpy(a), dtype=np.float64)
    total = mass.sum()
    blocks = []
    for c in classes:
        idx_s, idx_t = np.flatnonzero(ys_np == c), np.flatnonzero(yt_np == c)
        if weights == "uniform":
            w = 1.0 / len(classes)
        elif weights == "prior":
            w = float(mass[idx_s].sum() / total)
        else:
            w = 1.0
        blocks.append(ClassBlock(int(c), idx_s, idx_t, w))
    return blocks
