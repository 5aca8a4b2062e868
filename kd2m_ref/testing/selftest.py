"""``kd2m-ref selftest``: the package's own torch layer against the reference, on your device and torch.

GPU numerics differ from the CPU's (TF32 matmuls, cuSOLVER), so the property comparison that the
package's tests run on the CPU ships here and runs where you train: :func:`selftest` checks every
metric with a torch version through :func:`kd2m_ref.testing.check`, the same engine
(:func:`kd2m_ref.testing.compare.compare_example`) that ``tests/test_layers.py`` uses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..registry import METRICS

PROFILES = {"ci": 40, "deep": 2000}


@dataclass
class SelftestRow:
    metric: str
    examples: int
    worst_error: float
    worst_ratio: float  # error / tolerance, <= 1 passes
    gradients_finite: int
    ok: bool
    seconds: float
    message: str = ""


def selftest(keys=None, *, device: str = "cpu", dtype: str = "float32", profile: str = "ci",
             max_examples: int | None = None) -> list[SelftestRow]:
    """Compare ``kd2m_ref.torch`` with the reference for each metric (all with a torch version by
    default) on ``device`` in ``dtype``, strictly (an error above the reference-grade tolerance fails
    even within the textbook floor); gradients are checked for finiteness at student = teacher.

    Returns one :class:`SelftestRow` per metric.
    """
    from .check import MismatchError, check

    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}; got {profile!r}")
    n = max_examples or PROFILES[profile]
    rows = []
    for key in keys or [k for k, s in METRICS.items() if s.torch_path]:
        spec = METRICS[key]
        start = time.perf_counter()
        try:
            report = check(spec.torch, key, backend="torch", device=device, dtype=dtype, max_examples=n,
                           gradients="finite", strict=True)  # the package's own layer: within the tolerance
            rows.append(SelftestRow(key, report.examples, report.runs[0].worst_error, report.worst_ratio,
                                    report.equality_examples, True, time.perf_counter() - start))
        except MismatchError as err:
            rows.append(SelftestRow(key, err.examples, err.abs_error, err.abs_error / err.tolerance
                                    if err.tolerance else float("inf"), 0, False, time.perf_counter() - start,
                                    str(err)))
    return rows


def format_table(rows: list[SelftestRow]) -> str:
    lines = [f"{'metric':40s} {'examples':>8s} {'worst error':>12s} {'x tolerance':>12s} {'grad finite':>11s}  status",
             "-" * 96]
    for r in rows:
        lines.append(f"{r.metric:40s} {r.examples:8d} {r.worst_error:12.3e} {r.worst_ratio:12.3g} "
                     f"{r.gradients_finite:11d}  {'ok' if r.ok else 'FAIL'}")
    for r in rows:
        if not r.ok:
            lines += ["", f"{r.metric}:", r.message]
    return "\n".join(lines)
