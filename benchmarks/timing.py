"""Interleaved, paired timing and the verdicts drawn from it.

``interleaved`` runs several callables in rounds, every callable once per round in a rotated order
(A B C, B C A, C A B, ...), so that a burst of machine load lands on all of them, and returns the
per-round times. A ratio between two callables is then the median of the per-round ratios, with a
bootstrap 95 % interval over rounds (``ratio_interval``); a target on that ratio is *met* only when
the whole interval clears the threshold, *missed* only when the whole interval falls short of it,
and *unresolved* otherwise (``verdict``).
"""

from __future__ import annotations

import math
import os
import time
from typing import Callable

import numpy as np

N_BOOTSTRAP = 2000
MIN_ROUNDS = 3


def load_average() -> float:
    """The 1-minute load average (NaN where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def interleaved(calls: dict[str, Callable[[], float]], *, rounds: int, budget_s: float, block_s: float = 0.0,
                warm: dict[str, float] | None = None) -> tuple[dict[str, list[float]], dict[str, int]]:
    """``(times, repeats)``: seconds per call of each callable, one entry per round.

    Each callable performs one call and returns its duration in seconds (it synchronises a device
    itself). After one warm-up call each, a callable faster than ``block_s`` is repeated
    ``repeats[name]`` times per round and its round time is the mean of those calls (so that timer
    resolution and scheduler jitter are small against it). The number of rounds is what fits in
    ``budget_s``, between ``MIN_ROUNDS`` and ``rounds``. ``warm``: the warm-up times, when the caller
    has already made those calls.
    """
    names = list(calls)
    warm = {name: max((warm or {}).get(name) or calls[name](), 1e-7) for name in names}
    repeats = {name: max(1, math.ceil(block_s / warm[name])) for name in names}
    per_round = sum(warm[name] * repeats[name] for name in names)
    n_rounds = int(np.clip(budget_s / per_round, MIN_ROUNDS, rounds))
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(n_rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(sum(calls[name]() for _ in range(repeats[name])) / repeats[name])
    return times, repeats


def ratio_interval(numerator: list[float], denominator: list[float], seed: int = 0) -> dict:
    """Median of the per-round ratios ``numerator[r] / denominator[r]`` and its bootstrap 95 %
    percentile interval (rounds resampled with replacement)."""
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError(f"paired times needed: got {len(numerator)} and {len(denominator)} rounds")
    ratios = np.asarray(numerator, dtype=float) / np.asarray(denominator, dtype=float)
    rng = np.random.default_rng(seed)
    boot = np.median(rng.choice(ratios, size=(N_BOOTSTRAP, len(ratios)), replace=True), axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"ratio": float(np.median(ratios)), "ratio_ci95": [float(lo), float(hi)], "rounds": len(ratios)}


def verdict(interval: list[float], need: float) -> str:
    """"met" when the interval lies at or above ``need``, "missed" when it lies below, else "unresolved"."""
    lo, hi = interval
    if lo >= need:
        return "met"
    if hi < need:
        return "missed"
    return "unresolved"


def combine(verdicts: list[str]) -> str:
    """A target over several cases: missed if any case is missed, met if every case is met, else
    unresolved (no case at all: unresolved)."""
    if "missed" in verdicts:
        return "missed"
    if verdicts and all(v == "met" for v in verdicts):
        return "met"
    return "unresolved"


def timer(fn: Callable[[], object], sync: Callable[[], None]) -> Callable[[], float]:
    """``fn`` wrapped to return its wall time, ``sync`` called before the start and before the stop."""
    def call() -> float:
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - t0
    return call
