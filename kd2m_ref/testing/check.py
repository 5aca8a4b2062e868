"""``check``: test your own implementation of a metric against the reference, and learn which
convention it follows when it disagrees.

>>> from kd2m_ref.testing import check
>>> report = check(my_loss, "mmd", params={"kernel": "gaussian"})   # doctest: +SKIP

Hypothesis draws inputs from the metric's public strategy; each is given to your function (NumPy or
torch, detected) and to the float64 reference, and compared under the metric's tolerance model
(:mod:`kd2m_ref.testing.tolerance`). A disagreement raises :class:`MismatchError` (an
``AssertionError``) with the minimal counterexample, both values, the errors, the tolerance and a
diagnosis against the metric's known convention variants (:mod:`kd2m_ref.testing.variants`). For a
differentiable torch function the gradient w.r.t. the student's input is checked as well: finite at
student = teacher, and close to the gradient of the package's torch version.
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..registry import METRICS
from .compare import Comparison, ErrorMeasures, Rejected, compare_example, output_to_float, reference_value
from .examples import Example
from .tolerance import SAFETY, unit_roundoff
from .variants import evaluate as evaluate_variants

# Parameters that control an algorithm's convergence rather than the quantity: when your function
# does not take them, the reference keeps the drawn value instead of the default.
NUMERICAL = ("max_iter", "tol")

_FEATURE_S = ("xs", "x_s", "features_student", "student_features", "feat_s", "feats_s", "f_s", "fs", "z_s", "zs",
              "student", "source", "student_feat", "h_s")
_FEATURE_T = ("xt", "x_t", "features_teacher", "teacher_features", "feat_t", "feats_t", "f_t", "ft", "z_t", "zt",
              "teacher", "teacher_feat", "h_t")
_LOGIT_S = ("logits_student", "student_logits", "s_logits", "y_s", "out_s", "z_student")
_LOGIT_T = ("logits_teacher", "teacher_logits", "t_logits", "y_t", "out_t", "z_teacher")
ALIASES = {
    "ys": ("ys", "labels", "label", "y", "targets", "target", "y_true", "classes"),
    "yt": ("yt", "labels_teacher", "teacher_labels"),
    "a": ("a", "a_s", "weights_s", "wa", "mass_s"),
    "b": ("b", "b_t", "weights_t", "wb", "mass_t"),
    "temperature": ("T", "tau", "temp"),
    "epsilon": ("eps", "reg", "epsilon"),
    "bandwidth": ("sigma", "bw"),
}


class CheckError(Exception):
    """The check could not run: unknown metric, an adapter that cannot map the arguments, or no valid
    example under the given parameters."""


class _Failed(Exception):
    pass


class _StopShrinking(BaseException):
    """Raised past the shrink budget: ends the Hypothesis run at once, keeping the failures found."""


@dataclass
class Failure(ErrorMeasures):
    """One failing example: the inputs your function received (float64 copies), its value or the
    exception it raised, the reference and the tolerance."""

    example: Example
    value: float = math.nan
    reference: float = math.nan
    rtol: float = 0.0
    atol: float = 0.0
    exception: str | None = None
    kind: str = "value"  # value | exception | gradient_nonfinite | gradient_missing | gradient_mismatch
    detail: str = ""


@dataclass
class Diagnosis:
    """What the failing function computes instead: ``matches`` lists ``(variant, description)``."""

    kind: str  # variant | factor | none | exception | nonfinite | gradient
    message: str
    matches: list = field(default_factory=list)

    def __str__(self) -> str:
        return self.message


class MismatchError(AssertionError):
    """Your function disagrees with the reference: the minimal counterexample, both values, the error,
    the tolerance, and the diagnosis."""

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
                 f"[{self.kind}, {self.backend} {self.dtype}, after {self.examples} passing example(s)]",
                 f"  minimal counterexample: {f.example!r}"]
        if f.exception:
            lines.append(f"  your function raised: {f.exception}")
        else:
            what = "gradient " if self.kind.startswith("gradient") else ""
            lines += [f"  your {what}value:  {f.value!r}", f"  reference {what}value: {f.reference!r}",
                      f"  error: {f.error:.3e} (relative {f.rel_error:.3e}); tolerance {f.tolerance:.3e} "
                      f"(atol {f.atol:.2e} + rtol {f.rtol:.2e}*|ref|)"]
        if f.detail:
            lines.append(f"  {f.detail}")
        if self.fixed:
            lines.append("  parameters fixed (your function does not take them): "
                         + ", ".join(f"{k}={v!r}" for k, v in self.fixed.items()))
        lines.append(f"  diagnosis: {self.diagnosis}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        f = self.failure
        return {"metric": self.metric, "conforms": False, "kind": self.kind, "backend": self.backend,
                "dtype": self.dtype, "examples": self.examples, "counterexample": repr(f.example),
                "value": _jsonable(f.value), "reference": _jsonable(f.reference), "abs_error": _jsonable(f.error),
                "rel_error": _jsonable(f.rel_error), "rtol": f.rtol, "atol": f.atol,
                "tolerance": _jsonable(f.tolerance), "exception": f.exception, "detail": f.detail,
                "fixed": {k: repr(v) for k, v in self.fixed.items()},
                "diagnosis": {"kind": self.diagnosis.kind, "message": self.diagnosis.message,
                              "matches": [name for name, _ in self.diagnosis.matches]}}


def _jsonable(x: float):
    return x if math.isfinite(x) else repr(x)


@dataclass
class CheckReport:
    """Returned when your function conforms: examples run, worst error against the tolerance, and the
    gradient checks (``gradient_examples`` = 0 when they did not apply)."""

    metric: str
    backend: str
    dtype: str
    device: str
    examples: int = 0
    worst_ratio: float = 0.0  # error / tolerance, <= 1
    worst_error: float = 0.0
    worst_rel_error: float = 0.0
    worst_tolerance: float = 0.0
    gradient_examples: int = 0
    gradient_worst_ratio: float = 0.0
    equality_examples: int = 0
    fixed: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def record(self, cmp: Comparison) -> None:
        self.examples += 1
        if cmp.ratio >= self.worst_ratio:
            self.worst_ratio, self.worst_error = cmp.ratio, cmp.error
            self.worst_rel_error, self.worst_tolerance = cmp.rel_error, cmp.tolerance

    def __str__(self) -> str:
        lines = [f"conforms to `{self.metric}` ({self.backend} {self.dtype} on {self.device}): {self.examples} examples, "
                 f"worst error {self.worst_error:.2e} = {self.worst_ratio:.2g} x tolerance "
                 f"(relative {self.worst_rel_error:.2e})"]
        if self.gradient_examples or self.equality_examples:
            lines.append(f"  gradients: finite at student = teacher on {self.equality_examples} examples; "
                         f"{self.gradient_examples} compared with the torch reference, worst "
                         f"{self.gradient_worst_ratio:.2g} x tolerance")
        if self.fixed:
            lines.append("  parameters fixed (your function does not take them): "
                         + ", ".join(f"{k}={v!r}" for k, v in self.fixed.items()))
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("metric", "backend", "dtype", "device", "examples", "worst_ratio",
                                             "worst_error", "worst_rel_error", "worst_tolerance", "gradient_examples",
                                             "gradient_worst_ratio", "equality_examples", "notes")}
        return {**out, "conforms": True, "fixed": {k: repr(v) for k, v in self.fixed.items()}}


# ------------------------------------------------------------------------------------------ adapter

def _is_module(fn) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(fn, torch.nn.Module)


class Adapter:
    """Calls a user's function with the arguments of an :class:`Example`.

    Roles (``xs``, ``xt``, ``ys``, ``yt``, ``a``, ``b`` and the metric's parameters) are found by
    name in the function's signature (exact names, then common aliases: ``features_student``,
    ``logits_teacher``, ``labels``, ``T``, ...); student and teacher otherwise take the first two
    positional parameters. ``argmap`` maps a role to a parameter name (str) or position (int)
    explicitly. An ``nn.Module`` is called through ``forward``'s signature (module style
    ``forward(features_student, features_teacher, labels, logits_student, logits_teacher)``).
    """

    def __init__(self, fn: Callable, spec, argmap: dict | None = None):
        self.fn, self.spec = fn, spec
        target = fn.forward if _is_module(fn) else fn
        try:
            sig = inspect.signature(target)
        except (TypeError, ValueError):
            sig = None
        params = dict(sig.parameters) if sig else {}
        kinds = inspect.Parameter
        self.var_kw = any(p.kind is kinds.VAR_KEYWORD for p in params.values())
        named = [n for n, p in params.items() if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)]
        positional = [n for n, p in params.items() if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)]
        self.slots: dict[str, tuple[str, Any]] = {}
        for role, where in (argmap or {}).items():
            self.slots[role] = ("pos", where) if isinstance(where, int) else ("kw", where)
        taken = {w for kind, w in self.slots.values() if kind == "kw"}
        logits = "logits" in spec.needs
        student = (_LOGIT_S + _FEATURE_S) if logits else (_FEATURE_S + _LOGIT_S)
        teacher = (_LOGIT_T + _FEATURE_T) if logits else (_FEATURE_T + _LOGIT_T)
        for role, aliases in (("xs", student), ("xt", teacher)):
            if role not in self.slots:
                name = next((n for n in aliases if n in named and n not in taken), None)
                if name:
                    self.slots[role] = ("kw", name)
                    taken.add(name)
        label_names = ALIASES["ys"] if "labels" in spec.needs else ()
        free = [n for n in positional if n not in taken and n not in spec.params and n not in label_names]
        for role in ("xs", "xt"):
            if role not in self.slots:
                if free:
                    name = free.pop(0)
                    self.slots[role] = ("kw", name) if params[name].kind is not kinds.POSITIONAL_ONLY else (
                        "pos", positional.index(name))
                    taken.add(name)
                elif sig is None:
                    self.slots[role] = ("pos", 0 if role == "xs" else 1)
                else:
                    raise CheckError(f"cannot tell which argument of {_name(fn)}{sig} takes the {role} input; "
                                     "pass argmap={'xs': ..., 'xt': ...}")
        roles = (["ys", "yt"] if "labels" in spec.needs else []) + ["a", "b"] + list(spec.params)
        for role in roles:
            if role in self.slots:
                continue
            for name in (role,) + tuple(a for a in ALIASES.get(role, ()) if a not in spec.params or a == role):
                if name in named and name not in taken:
                    self.slots[role] = ("kw", name)
                    taken.add(name)
                    break
        if "labels" in spec.needs and "ys" not in self.slots:
            rest = [n for n in positional if n not in taken]
            if rest:
                self.slots["ys"] = ("kw", rest[0])
            elif self.var_kw:
                self.slots["ys"] = ("kw", "ys")
            else:
                raise CheckError(f"`{spec.key}` needs labels but {_name(fn)}{sig} takes no labels argument; "
                                 "pass argmap={'ys': '<name>'}")

    def accepts(self, role: str) -> bool:
        return role in self.slots or (self.var_kw and role not in ("xs", "xt"))

    def __call__(self, inputs: Example):
        values = {"xs": inputs.args[0], "xt": inputs.args[1], **inputs.kwargs}
        args: dict[int, Any] = {}
        kwargs: dict[str, Any] = {}
        for role, value in values.items():
            if role in self.slots:
                kind, where = self.slots[role]
                if kind == "pos":
                    args[where] = value
                else:
                    kwargs[where] = value
            elif self.var_kw and role not in ("xs", "xt"):
                kwargs[role] = value
        if args and sorted(args) != list(range(len(args))):
            raise CheckError(f"positions {sorted(args)} of argmap leave a gap")
        return self.fn(*(args[i] for i in sorted(args)), **kwargs)


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


# ------------------------------------------------------------------------------------------- engine

def run_property(strategy, body: Callable[[Example], Failure | None], *, max_examples: int,
                 seed: int | None = None, shrink_budget: int = 150) -> list[Failure]:
    """Run ``body`` on examples of ``strategy`` (Hypothesis, no database, shrinking on); return the
    failures recorded, the minimal one last ([] when every example passed). ``body`` returns None to
    pass, a :class:`Failure`, or raises :class:`Rejected` to discard the example. The run stops
    ``shrink_budget`` calls after the first failure, with the smallest failure found so far."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
    from hypothesis import seed as hseed
    from hypothesis.errors import Unsatisfiable

    failures: list[Failure] = []
    seen: dict[str, Failure] = {}
    calls = [0]

    @settings(database=None, max_examples=max_examples, derandomize=seed is None, deadline=None,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False, print_blob=False,
              verbosity=Verbosity.quiet, phases=(Phase.generate, Phase.shrink))
    @given(strategy)
    def prop(ex):
        if failures:
            calls[0] += 1
            if calls[0] > shrink_budget:
                raise _StopShrinking
        key = repr(ex)
        if key in seen:
            failure = seen[key]
        else:
            try:
                failure = body(ex)
            except Rejected:
                reject()
        if failure is not None:
            failures.append(failure)
            seen[key] = failure
            raise _Failed  # the one place a failure is raised (Hypothesis tells failures apart by origin)

    if seed is not None:
        prop = hseed(seed)(prop)
    try:
        prop()
    except (_Failed, _StopShrinking):
        return failures
    except Unsatisfiable as exc:
        raise CheckError("no valid example under these parameters: the reference refused every input drawn "
                         f"({exc})") from None
    return []


class _Checker:
    def __init__(self, fn, spec, params, backend, device, dtype, rtol, atol, argmap):
        self.fn, self.spec, self.params = fn, spec, dict(params or {})
        unknown = set(self.params) - set(spec.params)
        if unknown:
            raise CheckError(f"`{spec.key}` has no parameter(s) {sorted(unknown)}; its parameters: {sorted(spec.params)}")
        self.adapter = Adapter(fn, spec, argmap)
        if backend not in ("auto", "torch", "numpy"):
            raise CheckError(f"backend must be 'auto', 'torch' or 'numpy'; got {backend!r}")
        self.backend = backend if backend != "auto" else ("torch" if _is_module(fn) else None)
        self.device = device or _module_device(fn) or "cpu"
        self.dtype, self.rtol, self.atol = str(dtype).replace("torch.", ""), rtol, atol
        self.differentiable: bool | None = None
        self.fixed: dict = {}

    # inputs ----------------------------------------------------------------------------------
    def effective(self, ex: Example) -> Example:
        """The example as both sides see it: ``params`` applied; parameters your function does not take
        fixed to ``params`` or the defaults; weights it does not take dropped."""
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
        for name, p in self.spec.params.items():
            if not self.adapter.accepts(name):
                value = kwargs.get(name, p.default)
                if name not in ("a", "b") and name not in NUMERICAL:
                    self.fixed[name] = value
            elif name not in kwargs and p.default is not None and name not in NUMERICAL:
                kwargs[name] = p.default  # compare under the same value: pass our default explicitly
        return Example(ex.args, kwargs)

    def _call(self, inputs: Example):
        return self.adapter(inputs)

    def _detect(self, ex: Example) -> None:
        if self.backend is not None:
            return
        try:
            import torch
        except ImportError:
            self.backend = "numpy"
            return
        rounded = ex.rounded(self.dtype)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = self._call(rounded.to_torch(getattr(torch, self.dtype), self.device))
            self.backend = "torch" if isinstance(out, torch.Tensor) else "numpy"
        except Exception:  # noqa: BLE001 - not a torch function; the numpy call reports its own errors
            self.backend = "numpy"

    # values ----------------------------------------------------------------------------------
    def value_body(self, report: CheckReport):
        def body(ex: Example):
            eff = self.effective(ex)
            self._detect(eff)
            try:
                cmp = compare_example(self.spec, eff, self._call, dtype=self.dtype, device=self.device,
                                      backend=self.backend, rtol=self.rtol, atol=self.atol, reject_unconverged=True)
            except (Rejected, CheckError):
                raise
            except Exception as exc:  # noqa: BLE001 - the user's function raised: a failure to report
                rounded = eff.rounded(self.dtype)
                try:
                    _, ref = reference_value(self.spec, eff, self.dtype)
                except Rejected:
                    raise
                return Failure(rounded, reference=ref, exception=f"{type(exc).__name__}: {exc}", kind="exception")
            if not cmp.ok:
                return Failure(cmp.example, cmp.value, cmp.reference, cmp.rtol, cmp.atol)
            report.record(cmp)
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

    def gradient_body(self, report: CheckReport, compare_reference: bool = True):
        import torch

        tdtype = getattr(torch, self.dtype)
        u = unit_roundoff(self.dtype)

        def body(ex: Example):
            eff = self.effective(ex)
            # 1. finite at student = teacher
            eq = _equal_example(eff)
            try:
                rounded, _ = reference_value(self.spec, eq, self.dtype, reject_unconverged=True)
            except Rejected:
                rounded = None
            if self.differentiable is None:
                probe = eff.rounded(self.dtype).to_torch(tdtype, self.device, requires_grad=True)
                try:
                    self.differentiable = bool(getattr(self._call(probe), "requires_grad", False))
                except Exception:  # noqa: BLE001 - reported by the steps below
                    self.differentiable = True
            if not self.differentiable:
                return None
            if rounded is not None:
                inputs = rounded.to_torch(tdtype, self.device, requires_grad=True)
                try:
                    value, g = self._grad(self._call, inputs)
                except Exception as exc:  # noqa: BLE001
                    return Failure(rounded, exception=f"{type(exc).__name__}: {exc}", kind="exception",
                                   detail="raised at student = teacher")
                if g is None:
                    return Failure(rounded, value, kind="gradient_missing",
                                   detail="no gradient reaches the student's input (detached?)")
                if not bool(torch.isfinite(g).all()):
                    bad = int((~torch.isfinite(g)).sum())
                    return Failure(rounded, value, kind="gradient_nonfinite",
                                   detail=f"gradient w.r.t. the student has {bad} non-finite entries at student = teacher")
                report.equality_examples += 1
            # 2. close to the torch reference's gradient at a generic (jittered) point
            if not compare_reference or self.spec.torch_path is None:
                return None
            jit = _jittered(eff)
            try:
                rounded, ref = reference_value(self.spec, jit, self.dtype, reject_unconverged=True)
            except Rejected:
                return None
            inputs = rounded.to_torch(tdtype, self.device, requires_grad=True)
            ref_inputs = rounded.to_torch(tdtype, self.device, requires_grad=True)
            try:
                value, g = self._grad(self._call, inputs)
            except Exception as exc:  # noqa: BLE001
                return Failure(rounded, exception=f"{type(exc).__name__}: {exc}", kind="exception")
            _, g_ref = self._grad(lambda e: e.call(self.spec.torch), ref_inputs)
            if g is None or g_ref is None:
                return None if g_ref is None else Failure(rounded, value, kind="gradient_missing",
                                                         detail="no gradient reaches the student's input")
            g, g_ref = g.detach().double().cpu(), g_ref.detach().double().cpu()
            err = float(torch.linalg.vector_norm(g - g_ref))
            radius = max(float(np.abs(rounded.args[0]).max()), float(np.abs(rounded.args[1]).max()), 1e-12)
            norm_ref = float(torch.linalg.vector_norm(g_ref))
            tol = SAFETY * math.sqrt(u) * (norm_ref + abs(ref) / radius)
            if not err <= tol:
                return Failure(rounded, float(torch.linalg.vector_norm(g)), norm_ref, 0.0, tol, kind="gradient_mismatch",
                               detail=f"|grad - grad_ref| = {err:.3e} > {tol:.3e} (values shown are gradient norms)")
            report.gradient_examples += 1
            report.gradient_worst_ratio = max(report.gradient_worst_ratio, err / tol if tol > 0 else 0.0)
            return None
        return body


def _module_device(fn):
    if _is_module(fn):
        for t in list(fn.parameters()) + list(fn.buffers()):
            return str(t.device)
    return None


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


# ---------------------------------------------------------------------------------------- diagnosis

GROSS = 1e3  # error / tolerance above which a failure is not a matter of rounding


def _close(value: float, variant: float, f: Failure) -> bool:
    gap = abs(value - variant)
    return gap <= 4 * (f.atol + f.rtol * abs(variant)) + 1e-6 * max(abs(variant), abs(value)) and (
        gap < 0.1 * abs(value - f.reference))


def _is_gross(f: Failure) -> bool:
    return f.kind != "value" or not math.isfinite(f.value) or f.error > GROSS * f.tolerance


def shown_failure(failures: list[Failure]) -> Failure:
    """The failure to report: the smallest gross one (the last recorded: shrinking goes from large to
    small), else the minimal one. Shrinking alone can end on a borderline example, a rounding-level
    failure that hides what the function computes."""
    gross = [f for f in failures if _is_gross(f)]
    return gross[-1] if gross else failures[-1]


def _spread(pool: list[Failure], exclude: Failure, k: int = 6) -> list[Failure]:
    """Up to k distinct failures of ``pool`` besides ``exclude`` (the first found, then spread out)."""
    picked, seen = [], {repr(exclude.example)}
    for f in pool[:1] + pool[1:][::max(1, len(pool) // k)]:
        key = repr(f.example)
        if key not in seen:
            seen.add(key)
            picked.append(f)
    return picked[:k]


def _agreement(f: Failure) -> str:
    """How closely the values agree, in words (a reference of exactly 0 has no relative error)."""
    if not math.isfinite(f.rel_error):
        return f"the reference is exactly 0 and your value is {f.value:.3g}"
    return f"the values agree to about {int(-math.log10(max(f.rel_error, 1e-16)))} digits"


def diagnose(spec, failures: list[Failure], shown: Failure | None = None) -> Diagnosis:
    """Which known variant (or constant factor) explains the failures (recorded in the order found; the
    minimal one last); ``shown`` is the one reported (default :func:`shown_failure`)."""
    shown = shown or shown_failure(failures)
    if shown.kind == "exception":
        return Diagnosis("exception", f"your function raised {shown.exception}")
    if shown.kind == "gradient_nonfinite":
        return Diagnosis("gradient", "the gradient is NaN/inf where student = teacher (the fixed point of "
                                     "distillation): sqrt, cdist or sqrtm differentiated at 0?")
    if shown.kind == "gradient_missing":
        return Diagnosis("gradient", "no gradient reaches the student's input: the loss is detached or computed "
                                     "outside autograd (NumPy, .item(), a detached plan without the cost)")
    if shown.kind == "gradient_mismatch":
        rel = shown.error / shown.reference if shown.reference else math.inf
        if rel < 1e-2:
            return Diagnosis("gradient", f"the value is right but the gradient is off by {rel:.1e} relative: a "
                                         "precision problem (cancellation, e.g. an expanded |x|^2 + |y|^2 - 2xy cost) "
                                         "rather than a convention")
        return Diagnosis("gradient", "the value is right but the gradient is not that of the reference "
                                     "(a detached term, a stop-gradient, or a custom backward)")
    if not math.isfinite(shown.value):
        return Diagnosis("nonfinite", f"your function returned {shown.value!r}")
    gross = [f for f in failures if f.kind == "value" and math.isfinite(f.value) and _is_gross(f)]
    if not _is_gross(shown):
        return Diagnosis("none", f"your function matches no known variant of `{spec.key}`, but the error is within "
                                 f"{GROSS:.0e} x the tolerance ({_agreement(shown)}): a precision "
                                 "problem (cancellation, an expanded |x|^2 + |y|^2 - 2xy, a loose solver tolerance) "
                                 "rather than a convention")
    variants = spec.variants
    others = _spread(gross, shown)
    confirmed = []
    # the reported example first, then the most discriminating one (largest relative error)
    for primary in [shown] + sorted(others, key=lambda f: -f.rel_error)[:1]:
        values = evaluate_variants(spec.key, variants, primary.example)
        for name in (n for n, v in values.items() if _close(primary.value, v, primary)):
            rest = [f for f in [shown] + others if f is not primary]
            if all(_close(f.value, v, f) for f in rest
                   for v in [evaluate_variants(spec.key, {name: variants[name]}, f.example).get(name)] if v is not None):
                confirmed.append(name)
        if confirmed:
            break
    if confirmed:
        matches = [(n, variants[n][0]) for n in confirmed]
        text = "; also consistent with ".join(f"`{n}`: {d}" for n, d in matches)
        return Diagnosis("variant", f"your function matches {text}", matches)
    ratios = [f.value / f.reference for f in [shown] + others if f.reference != 0]
    refs = {round(f.reference, 12) for f in [shown] + others if f.reference != 0}
    if len(ratios) >= 2 and len(refs) >= 2 and max(ratios) - min(ratios) <= 1e-6 * abs(ratios[0]):
        return Diagnosis("factor", f"your function matches the reference times {ratios[0]:.6g} (a constant factor; "
                                   "no known variant)")
    hint = ""
    if shown.rel_error < 1e-4:
        hint = (f"; {_agreement(shown)}: a precision problem (cancellation, an expanded "
                "|x|^2 + |y|^2 - 2xy, a loose solver tolerance) rather than a convention")
    return Diagnosis("none", f"your function matches no known variant of `{spec.key}`{hint}")


def _finite_only(body):
    """``body`` with exceptions and non-finite values discarded: where does the function return a wrong number?"""
    def wrapped(ex):
        f = body(ex)
        if f is not None and (f.kind == "exception" or not math.isfinite(f.value)):
            raise Rejected("not finite")
        return f
    return wrapped


# --------------------------------------------------------------------------------------------- check

def check(fn: Callable, metric: str, *, params: dict | None = None, backend: str = "auto", device: str | None = None,
          max_examples: int = 100, rtol: float | None = None, atol: float | None = None, dtype: str = "float64",
          argmap: dict | None = None, gradients: bool | str = True, seed: int | None = None) -> CheckReport:
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
        Hypothesis examples for the values (the gradient phase runs up to a quarter as many).
    rtol, atol : float, optional
        Replace the metric's tolerance model.
    dtype : str
        Floating dtype of the inputs your function receives ("float64" or "float32").
    argmap : dict, optional
        Role -> your parameter name (str) or position (int), for roles ``xs``, ``xt``, ``ys``, ``yt``,
        ``a``, ``b`` and the metric's parameters, e.g. ``{"xs": "f_s", "xt": "f_t", "ys": "y"}``.
    gradients : bool or "finite"
        Check gradients of a differentiable torch function (``"finite"``: only finiteness at
        student = teacher).
    seed : int, optional
        Random Hypothesis run with this seed (default: derandomised, reproducible).

    Returns
    -------
    CheckReport
        When the function conforms.

    Raises
    ------
    MismatchError
        (an ``AssertionError``) with the minimal counterexample, both values, the relative error, the
        tolerance and the diagnosis.
    CheckError
        When the check cannot run (unknown key, unmappable signature, no valid input).
    """
    if metric not in METRICS:
        raise CheckError(f"unknown metric {metric!r}; registry keys: {sorted(METRICS)}")
    spec = METRICS[metric]
    checker = _Checker(fn, spec, params, backend, device, dtype, rtol, atol, argmap)
    strategy = spec.strategy()
    report = CheckReport(metric, "?", checker.dtype, checker.device)

    def fail(failures, body=None):
        checker.backend = checker.backend or "?"
        shown = shown_failure(failures)
        diagnosis = diagnose(spec, failures, shown)
        if body is not None and diagnosis.kind in ("exception", "nonfinite"):
            try:
                numbers = run_property(strategy, _finite_only(body), max_examples=min(max_examples, 20), seed=seed)
            except CheckError:
                numbers = []
            if numbers:
                other = diagnose(spec, numbers)
                diagnosis = Diagnosis(diagnosis.kind, f"{diagnosis.message} on this example; where it returns a "
                                                      f"number: {other.message}", other.matches)
        raise MismatchError(metric, shown, diagnosis, backend=checker.backend, dtype=checker.dtype,
                            fixed=checker.fixed, examples=report.examples)

    value_body = checker.value_body(report)
    failures = run_property(strategy, value_body, max_examples=max_examples, seed=seed)
    if failures:
        fail(failures, value_body)
    report.backend, report.fixed = checker.backend or "?", dict(checker.fixed)
    if gradients and checker.backend == "torch":
        body = checker.gradient_body(report, compare_reference=gradients != "finite")
        failures = run_property(strategy, body, max_examples=max(5, max_examples // 4), seed=seed)
        if failures:
            fail(failures)
        if not checker.differentiable:
            report.notes.append("the torch output carries no gradient: gradient checks skipped")
    if checker.backend == "numpy":
        report.notes.append("NumPy function: gradients not checked")
    return report
