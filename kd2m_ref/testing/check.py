"""``check``: test your own implementation of a metric against the reference, and learn which
convention it follows when it differs.

>>> from kd2m_ref.testing import check
>>> report = check(my_loss, "mmd", params={"kernel": "gaussian"})   # doctest: +SKIP

Hypothesis draws inputs from the metric's public strategy; each is given to your function (NumPy or
torch, detected; a torch function in float64 and float32) and to the float64 reference. Every error
is measured against two limits: the reference-grade tolerance (:mod:`kd2m_ref.testing.tolerance`)
and the precision floor of a textbook implementation (:mod:`kd2m_ref.testing.precision`). Three
verdicts (:mod:`kd2m_ref.testing.report`): within the tolerance, *conforms*; above it but within
the floor, *conforms, with precision loss* (a warning; ``strict=True`` makes it a failure); above
the floor, *differs*: :class:`~kd2m_ref.testing.report.MismatchError` with the grossest counterexample, shrunk without
leaving the gross region, and a diagnosis (:mod:`kd2m_ref.testing.diagnosis`). For a
differentiable torch function the gradient w.r.t. the student's input is checked as well: finite
at student = teacher, and close to the gradient of the package's torch version.
"""

from __future__ import annotations

import math
import traceback
import warnings
from typing import Callable

import numpy as np

from ..registry import METRICS
from .adapter import Adapter, is_module, module_device
from .compare import Rejected, compare_example, output_to_float, reference_value
from .diagnosis import diagnose, gross_threshold
from .examples import Example
from .precision import Floor, gradient_allowance, precision_floor
from .report import (CheckError, CheckInternalError, CheckReport, Diagnosis, DtypeRun, Failure, MismatchError,
                     PrecisionLossWarning)
from .strategies import within_range
from .tolerance import SAFETY, unit_roundoff

__all__ = ["CheckError", "CheckInternalError", "CheckReport", "Diagnosis", "Failure", "MismatchError",
           "PrecisionLossWarning", "check", "explore"]

# Parameters that control an algorithm's convergence rather than the quantity: when your function
# does not take them, the reference keeps the drawn value instead of the default.
NUMERICAL = ("max_iter", "tol")
DTYPES = ("float64", "float32")


class _UserRaised(Exception):
    """Your function raised (carries the original exception)."""


class _Abort(BaseException):
    """Ends a Hypothesis run at once: shrink budget spent, or an error of the check itself."""


# ------------------------------------------------------------------------------------------- engine

def explore(strategy, body: Callable[[Example], Failure | None], *, max_examples: int, seed: int | None = None,
            interesting: Callable[[Failure], bool] | None = None, shrink_budget: int = 150) -> list[Failure]:
    """Run ``body`` on examples of ``strategy`` (Hypothesis, no database); ``body`` returns None to
    pass, a :class:`~kd2m_ref.testing.report.Failure`, or raises ``Rejected`` to discard the example.

    Without ``interesting`` (a survey): every example runs and all failures are returned, in the
    order found. With it: the run stops at the first interesting failure and shrinks it, keeping
    only interesting ones, for ``shrink_budget`` calls; the minimal interesting failure is last.
    An exception of ``body`` other than ``Rejected`` ends the run and is re-raised.

    Examples
    --------
    >>> from kd2m_ref.testing.check import explore
    >>> from kd2m_ref.testing.strategies import ot_example
    >>> explore(ot_example(), lambda ex: None, max_examples=5)  # all pass
    []
    """
    from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
    from hypothesis import seed as hseed
    from hypothesis.errors import Unsatisfiable

    failures: list[Failure] = []
    seen: dict[str, Failure | None] = {}
    calls, errors = [0], []
    phases = (Phase.generate,) if interesting is None else (Phase.generate, Phase.shrink)

    @settings(database=None, max_examples=max_examples, derandomize=seed is None, deadline=None,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False, print_blob=False,
              verbosity=Verbosity.quiet, phases=phases)
    @given(strategy)
    def prop(ex):
        if interesting is not None and any(map(interesting, failures)):
            calls[0] += 1
            if calls[0] > shrink_budget:
                raise _Abort
        key = repr(ex) + repr(ex.meta)
        if key not in seen:
            try:
                seen[key] = body(ex)
            except Rejected:
                seen[key] = None
                reject()
            except Exception as exc:  # noqa: BLE001 - the check's own error: end the run, re-raise below
                errors.append(exc)
                raise _Abort from None
            if seen[key] is not None:
                failures.append(seen[key])
        failure = seen[key]
        if failure is not None and interesting is not None and interesting(failure):
            raise _Found

    if seed is not None:
        prop = hseed(seed)(prop)
    try:
        prop()
    except (_Found, _Abort):
        pass
    except Unsatisfiable as exc:
        raise CheckError("no valid example under these parameters: the reference refused every input drawn "
                         f"({exc})") from None
    if errors:
        raise errors[0]
    return failures


class _Found(Exception):
    """The one exception a failing example raises (Hypothesis tells failures apart by origin)."""


# ------------------------------------------------------------------------------------------ checker

class _Checker:
    """One dtype's value and gradient properties for a user's function."""

    def __init__(self, adapter: Adapter, spec, params, backend, device, dtype, rtol, atol):
        self.adapter, self.spec, self.params = adapter, spec, params
        self.backend, self.device, self.dtype = backend, device, dtype
        self.rtol, self.atol = rtol, atol
        self.differentiable: bool | None = None
        self.fixed: dict = {}

    # inputs ----------------------------------------------------------------------------------
    def effective(self, ex: Example) -> Example:
        """The example as both sides see it: ``params`` applied; parameters your function does not take
        fixed to ``params`` or the defaults; weights it does not take dropped; the strategy's range
        restored for the parameters so fixed."""
        kwargs = dict(ex.kwargs)
        kwargs.update(self.params)
        for name in list(kwargs):
            if self.adapter.accepts(name):
                continue
            if name in ("a", "b", "num_classes"):
                del kwargs[name]
            elif name == "yt":
                raise Rejected("your function takes no teacher labels yt")
            elif name in NUMERICAL or name in self.params or name == "ys":
                continue
            elif name in self.spec.params:
                kwargs[name] = self.spec.params[name].default
        fixed = set(self.params)
        for name, p in self.spec.params.items():
            if not self.adapter.accepts(name):
                fixed.add(name)
                value = kwargs.get(name, p.default)
                if name not in ("a", "b") and name not in NUMERICAL:
                    self.fixed[name] = value
            elif name not in kwargs and p.default is not None and name not in NUMERICAL:
                kwargs[name] = p.default  # compare under the same value: pass our default explicitly
        return within_range(Example(ex.args, kwargs, ex.meta), fixed)

    def _user(self, inputs: Example):
        """Your function's output; its exceptions as :class:`_UserRaised` (adapter problems stay CheckError)."""
        try:
            return self.adapter(inputs)
        except CheckError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as your function's failure
            raise _UserRaised(f"{type(exc).__name__}: {exc}") from exc

    def _value(self, inputs: Example) -> float:
        out = self._user(inputs)
        try:
            return output_to_float(out)
        except TypeError as exc:
            raise CheckError(f"your function {exc}") from None

    def detect(self, ex: Example) -> None:
        """torch or NumPy: the first call's output type (a torch function returns a tensor)."""
        if self.backend is not None:
            return
        try:
            import torch
        except ImportError:
            self.backend = "numpy"
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = self.adapter(ex.rounded(self.dtype).to_torch(getattr(torch, self.dtype), self.device))
            self.backend = "torch" if isinstance(out, torch.Tensor) else "numpy"
        except CheckError:
            raise
        except Exception:  # noqa: BLE001 - not a torch function; the NumPy call reports its own errors
            self.backend = "numpy"

    # values ----------------------------------------------------------------------------------
    def value_body(self, run: DtypeRun):
        def body(ex: Example):
            eff = self.effective(ex)
            self.detect(eff)
            try:
                cmp = compare_example(self.spec, eff, self._value, dtype=self.dtype, device=self.device,
                                      backend=self.backend, rtol=self.rtol, atol=self.atol, reject_unconverged=True)
            except _UserRaised as exc:
                rounded, ref = reference_value(self.spec, eff, self.dtype)
                return Failure(rounded, reference=ref, exception=str(exc), kind="exception")
            floor = precision_floor(self.spec.key, cmp.example, self.dtype, cmp.reference)
            # the floor is never below the tolerance; your own tolerance replaces both
            limit = cmp.tolerance if self.rtol is not None or self.atol is not None else max(floor.error, cmp.tolerance)
            floor = Floor(limit, floor.unit, floor.where, max(limit, floor.rank))
            if not math.isfinite(cmp.value) or cmp.error > floor.error:
                return Failure(cmp.example, cmp.value, cmp.reference, cmp.rtol, cmp.atol, floor=floor)
            run.record(cmp, floor)
            return None
        return body

    # gradients -------------------------------------------------------------------------------
    def _grad(self, fn, inputs):
        import torch

        out = fn(inputs)
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            return output_to_float(out), None
        (g,) = torch.autograd.grad(out.reshape(()), inputs.args[0], allow_unused=True)
        return output_to_float(out), g

    def gradient_body(self, run: DtypeRun, compare_reference: bool = True):
        import torch

        tdtype = getattr(torch, self.dtype)
        u = unit_roundoff(self.dtype)

        def body(ex: Example):
            eff = self.effective(ex)
            if self.differentiable is None:
                probe = eff.rounded(self.dtype).to_torch(tdtype, self.device, requires_grad=True)
                try:
                    self.differentiable = bool(getattr(self._user(probe), "requires_grad", False))
                except _UserRaised:
                    self.differentiable = True  # reported by the steps below
            if not self.differentiable:
                return None
            # 1. finite at student = teacher
            try:
                rounded, _ = reference_value(self.spec, _equal_example(eff), self.dtype, reject_unconverged=True)
            except Rejected:
                rounded = None
            if rounded is not None:
                inputs = rounded.to_torch(tdtype, self.device, requires_grad=True)
                try:
                    value, g = self._grad(self._user, inputs)
                except _UserRaised as exc:
                    return Failure(rounded, exception=str(exc), kind="exception", detail="raised at student = teacher")
                if g is None:
                    return Failure(rounded, value, kind="gradient_missing",
                                   detail="no gradient reaches the student's input (detached?)")
                if not bool(torch.isfinite(g).all()):
                    bad = int((~torch.isfinite(g)).sum())
                    return Failure(rounded, value, kind="gradient_nonfinite",
                                   detail=f"gradient w.r.t. the student has {bad} non-finite entries at student = teacher")
                run.equality_examples += 1
            # 2. close to the torch reference's gradient at a generic (jittered) point
            if not compare_reference or self.spec.torch_path is None:
                return None
            try:
                rounded, ref = reference_value(self.spec, _jittered(eff), self.dtype, reject_unconverged=True)
            except Rejected:
                return None
            inputs = rounded.to_torch(tdtype, self.device, requires_grad=True)
            ref_inputs = rounded.to_torch(torch.float64, self.device, requires_grad=True)  # the torch layer in float64
            try:
                value, g = self._grad(self._user, inputs)
            except _UserRaised as exc:
                return Failure(rounded, exception=str(exc), kind="exception")
            _, g_ref = self._grad(lambda e: e.call(self.spec.torch), ref_inputs)
            if g is None or g_ref is None:
                return None if g_ref is None else Failure(rounded, value, kind="gradient_missing",
                                                         detail="no gradient reaches the student's input")
            g, g_ref = g.detach().double().cpu(), g_ref.detach().double().cpu()
            err = float(torch.linalg.vector_norm(g - g_ref))
            radius = max(float(np.abs(rounded.args[0]).max()), float(np.abs(rounded.args[1]).max()), 1e-12)
            norm_ref = float(torch.linalg.vector_norm(g_ref))
            # first order: sqrt(u) relative, plus the value's rounding scale u·S per unit of input
            unit = precision_floor(self.spec.key, rounded, self.dtype, ref).unit
            tol = (SAFETY * math.sqrt(u) * (norm_ref + abs(ref) / radius) + SAFETY * unit * math.sqrt(g.numel()) / radius
                   + gradient_allowance(self.spec.key) * norm_ref)
            if not err <= tol:
                return Failure(rounded, float(torch.linalg.vector_norm(g)), norm_ref, 0.0, tol, kind="gradient_mismatch",
                               detail=f"|grad - grad_ref| = {err:.3e} > {tol:.3e} (values shown are gradient norms)")
            run.gradient_examples += 1
            run.gradient_worst_ratio = max(run.gradient_worst_ratio, err / tol if tol > 0 else 0.0)
            return None
        return body


def _equal_example(ex: Example) -> Example:
    """Student = teacher: xt := xs (b := a, yt := ys)."""
    xs = ex.args[0]
    kwargs = dict(ex.kwargs)
    if "b" in kwargs or "a" in kwargs:
        kwargs["b"] = kwargs.get("a")
    if "yt" in kwargs and isinstance(kwargs["yt"], np.ndarray) and kwargs["yt"].ndim == 1:
        kwargs["yt"] = kwargs.get("ys")
    elif "yt" in kwargs:
        raise Rejected("soft teacher labels")
    return Example((xs, xs.copy()) + ex.args[2:], kwargs)


def _jittered(ex: Example) -> Example:
    """The inputs moved by a seeded 1e-3 relative perturbation: a generic point, where the gradient is
    unique (no ties in a plan, a sort or a median)."""
    rng = np.random.default_rng(0)
    args = tuple(v + 1e-3 * max(float(np.abs(v).max()), 1.0) * rng.standard_normal(v.shape)
                 if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v for v in ex.args)
    return Example(args, dict(ex.kwargs))


# --------------------------------------------------------------------------------------------- check

def check(fn: Callable, metric: str, *, params: dict | None = None, backend: str = "auto", device: str | None = None,
          max_examples: int = 100, rtol: float | None = None, atol: float | None = None, dtype: str = "auto",
          argmap: dict | None = None, gradients: bool | str = True, seed: int | None = None,
          strict: bool = False) -> CheckReport:
    """Check ``fn`` against the reference of ``metric`` on Hypothesis-generated inputs.

    Parameters
    ----------
    fn : callable or torch.nn.Module
        Your implementation: NumPy or torch (``backend="auto"`` tries torch tensors first).
    metric : str
        A key of :data:`kd2m_ref.registry.METRICS`.
    params : dict, optional
        The conventions your function follows, for the parameters it does not take as arguments
        (e.g. ``{"weights": "prior"}``); parameters it takes are passed the drawn values. Defaults
        are the metric's.
    backend : {"auto", "torch", "numpy"}
    device : str, optional
        Torch device of the inputs (default: the module's device, else "cpu").
    max_examples : int
        Hypothesis examples per dtype for the values (the gradient phase runs up to a quarter as many).
    rtol, atol : float, optional
        Your own tolerance ``atol + rtol |ref|``, replacing both the tolerance model and the floor.
    dtype : {"auto", "float64", "float32"}
        Floating dtype of the inputs your function receives; "auto": float64, then float32 for a
        torch function (what training uses).
    argmap : dict, optional
        Role -> your parameter name (str) or position (int), for roles ``xs``, ``xt``, ``ys``, ``yt``,
        ``a``, ``b``, the metric's parameters and the fillers (:mod:`kd2m_ref.testing.adapter`),
        e.g. ``{"xs": "f_s", "xt": "f_t", "ys": "y"}``.
    gradients : bool or "finite"
        Check gradients of a differentiable torch function (``"finite"``: only finiteness at
        student = teacher).
    seed : int, optional
        Random Hypothesis run with this seed (default: derandomised, reproducible).
    strict : bool
        Precision loss (an error above the reference-grade tolerance, within the textbook floor) is a
        failure instead of a :class:`~kd2m_ref.testing.report.PrecisionLossWarning`.

    Returns
    -------
    CheckReport
        When the function conforms (``report.verdict``: "conforms" or "conforms, with precision loss").

    Raises
    ------
    MismatchError
        (an ``AssertionError``) the function differs: the grossest counterexample, both values, the
        errors against tolerance and floor, and the diagnosis.
    CheckError
        The check cannot run (unknown key or parameter, unmappable signature, no CUDA device, no valid
        input); :class:`~kd2m_ref.testing.report.CheckInternalError` for a bug of the checker itself.

    Examples
    --------
    >>> from kd2m_ref.reference import hinton_kd
    >>> from kd2m_ref.testing import check
    >>> def my_kd(logits_student, logits_teacher):  # here: the reference
    ...     return hinton_kd(logits_student, logits_teacher)
    >>> check(my_kd, "hinton_kd", max_examples=10).verdict
    'conforms'

    A function that differs raises :class:`~kd2m_ref.testing.report.MismatchError` (see there).
    """
    if metric not in METRICS:
        raise CheckError(f"unknown metric {metric!r}; registry keys: {sorted(METRICS)}")
    spec = METRICS[metric]
    params = dict(params or {})
    unknown = set(params) - set(spec.params)
    if unknown:
        raise CheckError(f"`{spec.key}` has no parameter(s) {sorted(unknown)}; its parameters: {sorted(spec.params)}")
    from .._conventions import check_params

    try:
        check_params(metric, **params)
    except ValueError as exc:
        raise CheckError(f"params: {exc}") from None
    if backend not in ("auto", "torch", "numpy"):
        raise CheckError(f"backend must be 'auto', 'torch' or 'numpy'; got {backend!r}")
    if dtype not in ("auto",) + DTYPES:
        raise CheckError(f"dtype must be 'auto', 'float64' or 'float32'; got {dtype!r}")
    device = device or module_device(fn) or "cpu"
    if str(device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise CheckError(f"device {device!r} requested but torch.cuda.is_available() is False (no CUDA device)")
    adapter = Adapter(fn, spec, argmap)
    try:
        return _check(adapter, spec, params, "torch" if backend == "auto" and is_module(fn) else
                      (None if backend == "auto" else backend), device, dtype, max_examples, rtol, atol, gradients,
                      seed, strict)
    except (CheckError, MismatchError):
        raise
    except Exception as exc:  # noqa: BLE001 - never a verdict: a bug report
        raise CheckInternalError("internal error in kd2m-ref's checker (a bug in kd2m-ref, not a verdict on your "
                                 "function; please report it with this traceback):\n"
                                 + "".join(traceback.format_exception(exc))) from exc


def _check(adapter, spec, params, backend, device, dtype, max_examples, rtol, atol, gradients, seed, strict):
    strategy = spec.strategy()
    report = CheckReport(spec.key, "?", device)
    dtypes = [dtype] if dtype != "auto" else ["float64"]
    while dtypes:
        current = dtypes.pop(0)
        checker = _Checker(adapter, spec, params, backend, device, current, rtol, atol)
        run = DtypeRun(current)
        body = checker.value_body(run)
        failures = explore(strategy, body, max_examples=max_examples, seed=seed)
        backend = checker.backend or backend
        if failures:
            _fail(spec, checker, strategy, failures, max_examples, seed, run)
        if gradients and backend == "torch":
            grad = checker.gradient_body(run, compare_reference=gradients != "finite")
            failures = explore(strategy, grad, max_examples=max(5, max_examples // 4), seed=seed,
                               interesting=lambda f: True)
            if failures:
                shown = failures[-1]
                raise MismatchError(spec.key, shown, diagnose(spec, failures, shown), backend=backend,
                                    dtype=current, fixed=checker.fixed, examples=run.examples)
            if not checker.differentiable and not any("carries no gradient" in n for n in report.notes):
                report.notes.append("the torch output carries no gradient: gradient checks skipped")
        report.runs.append(run)
        report.fixed = dict(checker.fixed)
        if dtype == "auto" and current == "float64" and backend == "torch":
            dtypes.append("float32")
    report.backend = backend or "?"
    if backend == "numpy":
        report.notes.append("NumPy function: gradients not checked")
    if report.findings:
        if strict:
            worst = max(report.findings, key=lambda r: r.precision.floor.units(r.precision.error))
            raise MismatchError(spec.key, worst.precision, diagnose(spec, [worst.precision], worst.precision),
                                backend=report.backend, dtype=worst.dtype, fixed=report.fixed, examples=report.examples)
        warnings.warn(PrecisionLossWarning(f"`{spec.key}` conforms with precision loss:\n"
                                           + report.precision_message()), stacklevel=3)
    return report


def _fail(spec, checker, strategy, failures, max_examples, seed, run):
    """Shrink within the gross region, diagnose, and raise :class:`MismatchError`."""
    threshold = gross_threshold(failures)
    shrunk = explore(strategy, checker.value_body(DtypeRun(checker.dtype)), max_examples=max_examples, seed=seed,
                     interesting=lambda f: f.severity >= threshold)
    gross = [f for f in shrunk if f.severity >= threshold]
    shown = gross[-1] if gross else max(failures, key=lambda f: f.severity)
    diagnosis = diagnose(spec, failures, shown)  # the survey's failures: diverse inputs, not shrink steps
    if diagnosis.kind in ("exception", "nonfinite"):
        numbers = [f for f in failures if f.kind == "value" and math.isfinite(f.value)]
        if numbers:
            other = diagnose(spec, numbers, max(numbers, key=lambda f: f.severity))
            diagnosis = Diagnosis(diagnosis.kind, f"{diagnosis.message} on this example; where it returns a "
                                                  f"number: {other.message}", other.matches)
    raise MismatchError(spec.key, shown, diagnosis, backend=checker.backend or "?", dtype=checker.dtype,
                        fixed=checker.fixed, examples=run.examples + len(failures))
