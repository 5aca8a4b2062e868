"""What a failing function computes instead: the known convention variant that matches most of its
gross failures, a constant factor, or a precision problem.

Variants are judged only on *gross* failures (error far above the precision floor), so rounding never
decides a convention; each variant is evaluated on each of them (iterative variants converged) and the
one matching most is named, with "k of n failures match". A failure on which every variant equals the
reference (e.g. a stabiliser's +1e-9 where all points coincide) cannot tell variants apart and is
left out of the n.
"""

from __future__ import annotations

import math

from .report import Diagnosis, Failure
from .variants import evaluate as evaluate_variants

#: The shown failure stays within this factor of the grossest (in error / floor).
GROSS = 1e3
MAX_COMPARED = 8  # gross failures the variants are evaluated on


def gross_threshold(failures: list[Failure]) -> float:
    """Severity (error / floor) above which a failure counts as gross: within ``GROSS`` of the
    grossest, and above the floor.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.testing import Example
    >>> from kd2m_ref.testing.diagnosis import gross_threshold
    >>> from kd2m_ref.testing.precision import Floor
    >>> from kd2m_ref.testing.report import Failure
    >>> ex = Example((np.zeros((1, 1)), np.zeros((1, 1))))
    >>> floor = Floor(error=1e-6, unit=1e-7, where=())
    >>> worst = Failure(ex, value=1.0, reference=0.0, floor=floor)
    >>> gross_threshold([worst])  # its error is 1e6 floors; 1e6 / GROSS
    1000.0
    """
    worst = max(f.severity for f in failures)
    return math.inf if math.isinf(worst) else max(1.0, worst / GROSS)


def _close(value: float, variant: float, f: Failure) -> bool:
    gap = abs(value - variant)
    return gap <= 4 * f.floor.error + 1e-6 * max(abs(variant), abs(value)) and gap < 0.1 * abs(value - f.reference)


def _differs(variant: float, f: Failure) -> bool:
    """Whether a variant's value differs from the reference on ``f`` by more than the floor."""
    return abs(variant - f.reference) > 4 * f.floor.error + 1e-6 * max(abs(variant), abs(f.reference))


def _distinct(failures: list[Failure], first: Failure) -> list[Failure]:
    """``first`` and up to MAX_COMPARED - 1 other failures with distinct inputs, grossest first."""
    picked, seen = [first], {repr(first.example)}
    for f in sorted(failures, key=lambda f: -f.severity):
        key = repr(f.example)
        if key not in seen and len(picked) < MAX_COMPARED:
            seen.add(key)
            picked.append(f)
    return picked


def _gradient(shown: Failure) -> Diagnosis:
    if shown.kind == "gradient_nonfinite":
        return Diagnosis("gradient", "the gradient is NaN/inf where student = teacher (the fixed point of "
                                     "distillation): sqrt, cdist or sqrtm differentiated at 0?")
    if shown.kind == "gradient_missing":
        return Diagnosis("gradient", "no gradient reaches the student's input: the loss is detached or computed "
                                     "outside autograd (NumPy, .item(), a detached plan without the cost)")
    rel = shown.error / shown.reference if shown.reference else math.inf
    if rel < 1e-2:
        return Diagnosis("gradient", f"the value is right but the gradient is off by {rel:.1e} relative: a "
                                     "precision problem (cancellation, e.g. an expanded |x|^2 + |y|^2 - 2xy cost) "
                                     "rather than a convention")
    return Diagnosis("gradient", "the value is right but the gradient is not that of the reference "
                                 "(a detached term, a stop-gradient, or a custom backward)")


def _factor(compared: list[Failure]) -> float | None:
    """The constant factor value / reference shared by the failures, when it is measurably not 1."""
    pairs = [(f.value / f.reference, f) for f in compared if f.reference != 0]
    if len(pairs) < 2 or len({round(f.reference, 12) for _, f in pairs}) < 2:
        return None
    ratios = [r for r, _ in pairs]
    slack = max(f.floor.error / abs(f.reference) for _, f in pairs)
    if max(ratios) - min(ratios) > 1e-6 * abs(ratios[0]) + 2 * slack:
        return None
    factor = sum(ratios) / len(ratios)
    return factor if abs(factor - 1) > 10 * slack + 1e-9 else None


def diagnose(spec, failures: list[Failure], shown: Failure) -> Diagnosis:
    """The diagnosis of ``failures`` (value failures of one run), reported with ``shown``.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref import METRICS
    >>> from kd2m_ref.testing import Example
    >>> from kd2m_ref.testing.diagnosis import diagnose
    >>> from kd2m_ref.testing.report import Failure
    >>> ex = Example((np.zeros((2, 1)), np.ones((2, 1))))
    >>> raised = Failure(ex, exception="ValueError: bad", kind="exception")
    >>> diagnose(METRICS["mmd"], [raised], raised).message
    'your function raised ValueError: bad'
    """
    if shown.kind == "exception":
        return Diagnosis("exception", f"your function raised {shown.exception}")
    if shown.kind.startswith("gradient"):
        return _gradient(shown)
    if shown.kind == "precision":
        return Diagnosis("precision", f"the error is {shown.floor.describe(shown.error)}: above the reference-grade "
                                      "tolerance, within the precision floor of a textbook implementation "
                                      "(reported as a failure because strict=True)")
    if not math.isfinite(shown.value):
        return Diagnosis("nonfinite", f"your function returned {shown.value!r}")
    threshold = gross_threshold([f for f in failures if f.kind == "value" and math.isfinite(f.value)] or [shown])
    gross = [f for f in failures if f.kind == "value" and math.isfinite(f.value) and f.severity >= threshold]
    variants = spec.variants
    counts: dict[str, int] = {}
    compared = []
    for f in _distinct(gross, shown):
        values = evaluate_variants(spec.key, variants, f.example)
        if not any(_differs(value, f) for value in values.values()):
            continue  # every variant equals the reference here: this failure cannot tell them apart
        compared.append(f)
        for name, value in values.items():
            if _close(f.value, value, f):
                counts[name] = counts.get(name, 0) + 1
    compared = compared or [shown]
    n = len(compared)
    best = max(counts.values(), default=0)
    factor = _factor(compared)
    if best and (best == n or (factor is None and 2 * best >= n)):
        names = [name for name, k in counts.items() if k == best]
        matches = [(name, variants[name][0]) for name in names]
        text = "; also consistent with ".join(f"`{name}`: {desc}" for name, desc in matches)
        return Diagnosis("variant", f"your function matches {text} ({best} of {n} gross failures match)", matches)
    if shown.severity < GROSS:
        return Diagnosis("none", f"no convention: the largest error is {shown.severity:.3g} x the precision floor "
                                 f"of a textbook implementation ({shown.floor.describe(shown.error)}), more than "
                                 "rounding yet far from a different quantity: a loose solver tolerance, a stabiliser "
                                 "(+1e-9), reduced precision inside (float32 weights or constants)")
    if factor is not None:
        return Diagnosis("factor", f"your function matches the reference times {factor:.6g} (a constant factor; no "
                                   f"known variant) on {n} of {n} gross failures")
    hint = ""
    if best:
        name = max(counts, key=counts.get)
        hint = f"; closest: `{name}` ({best} of {n} gross failures match)"
    return Diagnosis("none", f"your function matches no known variant of `{spec.key}`{hint}")
