"""What :func:`kd2m_ref.testing.check` returns or raises: the three verdicts and their records.

* **conforms** — :class:`CheckReport`, every error within the reference-grade tolerance;
* **conforms, with precision loss** — :class:`CheckReport` with ``precision`` findings (some error
  above that tolerance but within the precision floor of a textbook implementation); a
  :class:`PrecisionLossWarning` is issued, and ``strict=True`` raises :class:`MismatchError` instead;
* **differs** — :class:`MismatchError` (an ``AssertionError``): an error above the floor, an
  exception, a non-finite value or a gradient defect, with the grossest counterexample and a diagnosis.

Problems with the check itself raise :class:`CheckError`: a usage or adapter problem, or (as
:class:`CheckInternalError`) a bug of the checker. The CLI maps them to exit status 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..registry import METRICS
from .compare import ErrorMeasures
from .examples import Example


class CheckError(Exception):
    """The check could not run: unknown metric, an adapter that cannot map the arguments, an
    unavailable device, or no valid example under the given parameters.

    Examples
    --------
    >>> from kd2m_ref.testing import CheckError, check
    >>> try:
    ...     check(len, "no_such_metric")
    ... except CheckError as err:
    ...     print(str(err)[:31])
    unknown metric 'no_such_metric'
    """


class CheckInternalError(CheckError):
    """A bug in the checker itself (never a verdict on your function).

    Examples
    --------
    >>> from kd2m_ref.testing import CheckError, CheckInternalError
    >>> issubclass(CheckInternalError, CheckError)  # except CheckError: both
    True
    """


class PrecisionLossWarning(UserWarning):
    """Your function conforms, but some error exceeds the reference-grade tolerance (within the
    precision floor of a textbook implementation).

    Examples
    --------
    >>> import warnings
    >>> from kd2m_ref.testing import PrecisionLossWarning
    >>> with warnings.catch_warnings():  # make precision loss an error
    ...     warnings.simplefilter("error", PrecisionLossWarning)
    ...     issubclass(PrecisionLossWarning, UserWarning)
    True
    """


@dataclass
class Failure(ErrorMeasures):
    """One failing example: the inputs your function received (float64 copies), its value or the
    exception it raised, the reference, the tolerance (``atol + rtol |ref|``) and the precision floor.

    Examples
    --------
    >>> import numpy as np
    >>> from kd2m_ref.testing import Example
    >>> from kd2m_ref.testing.report import Failure
    >>> ex = Example((np.zeros((1, 1)), np.ones((1, 1))))
    >>> failure = Failure(ex, value=1.5, reference=1.0, rtol=0.1)
    >>> failure.error, failure.tolerance, failure.rel_error
    (0.5, 0.1, 0.5)
    """

    example: Example
    value: float = math.nan
    reference: float = math.nan
    rtol: float = 0.0
    atol: float = 0.0
    exception: str | None = None
    kind: str = "value"  # value | exception | gradient_nonfinite | gradient_missing | gradient_mismatch | precision
    detail: str = ""
    floor: object = None  # precision.Floor of a value comparison

    @property
    def severity(self) -> float:
        """Error over the precision floor (its ranking value ``rank``), the measure of grossness; inf for
        an exception, a non-finite value or a gradient defect."""
        if self.kind not in ("value", "precision") or not math.isfinite(self.value):
            return math.inf
        limit = max(self.floor.error, self.floor.rank) if self.floor else self.tolerance
        return self.error / limit if limit > 0 else (math.inf if self.error > 0 else 0.0)


@dataclass
class Diagnosis:
    """What the failing function computes instead: ``matches`` lists ``(variant, description)``.

    Examples
    --------
    >>> from kd2m_ref.testing.report import Diagnosis
    >>> print(Diagnosis("factor", "matches the reference times 2"))
    matches the reference times 2
    """

    kind: str  # variant | factor | none | exception | nonfinite | gradient | precision
    message: str
    matches: list = field(default_factory=list)

    def __str__(self) -> str:
        return self.message


def _jsonable(x: float):
    return x if math.isfinite(x) else repr(x)


class MismatchError(AssertionError):
    """Your function differs from the reference: the grossest counterexample (shrunk), both values,
    the error against the tolerance and the precision floor, and the diagnosis.

    Examples
    --------
    >>> from kd2m_ref.reference import hinton_kd
    >>> from kd2m_ref.testing import MismatchError, check
    >>> def my_kd(s, t):  # KL(student || teacher): the reverse of Hinton's
    ...     return hinton_kd(s, t, direction="student_teacher")
    >>> try:
    ...     check(my_kd, "hinton_kd", max_examples=20)
    ... except MismatchError as err:
    ...     print(err.diagnosis.kind, err.diagnosis.matches[0][0])
    variant direction=student_teacher
    """

    def __init__(self, metric: str, failure: Failure, diagnosis: Diagnosis, *, backend: str, dtype: str,
                 fixed: dict, examples: int):
        self.metric, self.failure, self.diagnosis = metric, failure, diagnosis
        self.example, self.value, self.reference = failure.example, failure.value, failure.reference
        self.abs_error, self.rel_error = failure.error, failure.rel_error
        self.rtol, self.atol, self.tolerance = failure.rtol, failure.atol, failure.tolerance
        self.kind, self.backend, self.dtype, self.fixed, self.examples = failure.kind, backend, dtype, fixed, examples
        super().__init__(self._text())

    def _text(self) -> str:
        f = self.failure
        lines = [f"your function does not match `{self.metric}` ({METRICS[self.metric].returns}) "
                 f"[{self.kind}, {self.backend} {self.dtype}, after {self.examples} example(s)]",
                 f"  counterexample: {f.example!r}"]
        if f.exception:
            lines.append(f"  your function raised: {f.exception}")
        else:
            what = "gradient " if self.kind.startswith("gradient") else ""
            lines += [f"  your {what}value:  {f.value!r}", f"  reference {what}value: {f.reference!r}",
                      f"  error: {f.error:.3e} (relative {f.rel_error:.3e}); tolerance {f.tolerance:.3e} "
                      f"(atol {f.atol:.2e} + rtol {f.rtol:.2e}*|ref|)"]
            if f.floor is not None:
                times = f.error / f.floor.error if f.floor.error > 0 else math.inf
                lines.append(f"  precision floor of a textbook implementation: {f.floor.error:.3e}; the error is "
                             f"{f.floor.describe(f.error)}, {times:.3g} x the floor")
        if f.detail:
            lines.append(f"  {f.detail}")
        if self.fixed:
            lines.append("  parameters fixed (your function does not take them): "
                         + ", ".join(f"{k}={v!r}" for k, v in self.fixed.items()))
        lines.append(f"  diagnosis: {self.diagnosis}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        f = self.failure
        return {"metric": self.metric, "verdict": "differs", "conforms": False, "kind": self.kind,
                "backend": self.backend, "dtype": self.dtype, "examples": self.examples,
                "counterexample": repr(f.example), "value": _jsonable(f.value), "reference": _jsonable(f.reference),
                "abs_error": _jsonable(f.error), "rel_error": _jsonable(f.rel_error), "rtol": f.rtol, "atol": f.atol,
                "tolerance": _jsonable(f.tolerance), "floor": None if f.floor is None else f.floor.error,
                "severity": _jsonable(f.severity), "exception": f.exception, "detail": f.detail,
                "fixed": {k: repr(v) for k, v in self.fixed.items()},
                "diagnosis": {"kind": self.diagnosis.kind, "message": self.diagnosis.message,
                              "matches": [name for name, _ in self.diagnosis.matches]}}


@dataclass
class DtypeRun:
    """The checks of one dtype: examples run, worst error against the tolerance, the worst precision
    finding (error above the tolerance, within the floor), and the gradient checks.

    Examples
    --------
    >>> from kd2m_ref.reference import mmd
    >>> from kd2m_ref.testing import check
    >>> run = check(mmd, "mmd", max_examples=10).runs[0]
    >>> run.dtype, run.examples > 0, run.worst_floor_ratio <= 1
    ('float64', True, True)
    """

    dtype: str
    examples: int = 0
    worst_ratio: float = 0.0  # error / tolerance of the passing examples
    worst_error: float = 0.0
    worst_rel_error: float = 0.0
    worst_units: float = 0.0  # largest error in units of u·S
    worst_floor_ratio: float = 0.0  # largest error / precision floor (<= 1 passes)
    worst_where: tuple = ()  # where the largest error in units of u·S occurred
    precision: Failure | None = None  # the worst finding above the tolerance
    gradient_examples: int = 0
    gradient_worst_ratio: float = 0.0
    equality_examples: int = 0

    def record(self, cmp, floor) -> None:
        self.examples += 1
        if floor.unit > 0 and floor.units(cmp.error) >= self.worst_units:
            self.worst_units, self.worst_where = floor.units(cmp.error), floor.where
        if floor.error > 0:
            self.worst_floor_ratio = max(self.worst_floor_ratio, cmp.error / floor.error)
        if cmp.ratio >= self.worst_ratio:
            self.worst_ratio, self.worst_error, self.worst_rel_error = cmp.ratio, cmp.error, cmp.rel_error
        if not cmp.ok and (self.precision is None
                           or floor.units(cmp.error) > self.precision.floor.units(self.precision.error)):
            self.precision = Failure(cmp.example, cmp.value, cmp.reference, cmp.rtol, cmp.atol, kind="precision",
                                     floor=floor)

    def line(self) -> str:
        text = (f"{self.dtype}: {self.examples} examples, worst error {self.worst_error:.2e} = "
                f"{self.worst_ratio:.2g} x tolerance (relative {self.worst_rel_error:.2e}), "
                f"{self.worst_units:.3g} u·S, {self.worst_floor_ratio:.2g} x the floor")
        if self.gradient_examples or self.equality_examples:
            text += (f"; gradients finite at student = teacher on {self.equality_examples} examples, "
                     f"{self.gradient_examples} compared with the torch reference (worst "
                     f"{self.gradient_worst_ratio:.2g} x tolerance)")
        return text


@dataclass
class CheckReport:
    """Returned when your function conforms (``verdict`` "conforms" or "conforms, with precision
    loss"): one :class:`DtypeRun` per dtype checked.

    Examples
    --------
    >>> from kd2m_ref.reference import hinton_kd
    >>> from kd2m_ref.testing import check
    >>> report = check(hinton_kd, "hinton_kd", max_examples=10)
    >>> print(str(report).splitlines()[0])
    conforms: `hinton_kd` (numpy on cpu)
    >>> report.dtype, report.to_dict()["conforms"]
    ('float64', True)
    """

    metric: str
    backend: str
    device: str
    runs: list = field(default_factory=list)
    fixed: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    @property
    def findings(self) -> list:
        return [r for r in self.runs if r.precision is not None]

    @property
    def verdict(self) -> str:
        return "conforms, with precision loss" if self.findings else "conforms"

    @property
    def dtype(self) -> str:
        return ", ".join(r.dtype for r in self.runs)

    @property
    def examples(self) -> int:
        return sum(r.examples for r in self.runs)

    @property
    def worst_ratio(self) -> float:
        return max((r.worst_ratio for r in self.runs), default=0.0)

    @property
    def gradient_examples(self) -> int:
        return sum(r.gradient_examples for r in self.runs)

    @property
    def equality_examples(self) -> int:
        return sum(r.equality_examples for r in self.runs)

    def precision_message(self) -> str:
        lines = []
        for r in self.findings:
            f = r.precision
            lines.append(f"{r.dtype}: error {f.error:.3e} = {f.floor.describe(f.error)} on {f.example!r} "
                         f"(reference {f.reference!r}, yours {f.value!r}); reference-grade tolerance "
                         f"{f.tolerance:.3e}, textbook floor {f.floor.error:.3e}")
        return "\n".join(lines)

    def __str__(self) -> str:
        lines = [f"{self.verdict}: `{self.metric}` ({self.backend} on {self.device})"]
        lines += [f"  {r.line()}" for r in self.runs]
        if self.findings:
            lines += ["  precision loss (above the reference-grade tolerance, within the textbook floor):"]
            lines += [f"    {line}" for line in self.precision_message().splitlines()]
        if self.fixed:
            lines.append("  parameters fixed (your function does not take them): "
                         + ", ".join(f"{k}={v!r}" for k, v in self.fixed.items()))
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        runs = []
        for r in self.runs:
            row = {k: getattr(r, k) for k in ("dtype", "examples", "worst_ratio", "worst_error", "worst_rel_error",
                                              "worst_units", "worst_floor_ratio", "gradient_examples", "gradient_worst_ratio",
                                              "equality_examples")}
            if r.precision is not None:
                f = r.precision
                row["precision"] = {"counterexample": repr(f.example), "error": f.error, "units": _jsonable(f.floor.units(f.error)),
                                    "where": list(f.floor.where), "floor": f.floor.error, "tolerance": f.tolerance}
            runs.append(row)
        return {"metric": self.metric, "verdict": self.verdict, "conforms": True, "backend": self.backend,
                "device": self.device, "runs": runs, "notes": self.notes,
                "fixed": {k: repr(v) for k, v in self.fixed.items()}}
