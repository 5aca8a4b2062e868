"""Calling a user's loss with the arguments of an :class:`~kd2m_ref.testing.examples.Example`.

Roles are ``xs``, ``xt`` (student and teacher: features, or logits for a logit metric), ``ys``,
``yt`` (labels), ``a``, ``b`` (sample weights) and the metric's parameters. They are found by name in
the signature (exact names, then common aliases: ``features_student``, ``logits_teacher``,
``labels``, ``T``, ...); student and teacher otherwise take the first two positional parameters;
``argmap`` maps a role to a parameter name (str) or position (int) explicitly.

Real distillation code often takes more than the metric needs. A *required* argument the metric
does not supply is filled so that it cannot change the value: labels for a label-free metric are all
0 (one class: a class-conditional loss then equals the marginal one), logits for a feature metric
and features for a logit metric are zeros, equal for student and teacher (a KD or feature term
then vanishes). Any other required argument is a usage error that names it.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from .examples import Example
from .report import CheckError

_FEATURE_S = ("xs", "x_s", "features_student", "student_features", "feat_s", "feats_s", "f_s", "fs", "z_s", "zs",
              "student", "source", "student_feat", "h_s")
_FEATURE_T = ("xt", "x_t", "features_teacher", "teacher_features", "feat_t", "feats_t", "f_t", "ft", "z_t", "zt",
              "teacher", "teacher_feat", "h_t")
_LOGIT_S = ("logits_student", "student_logits", "s_logits", "y_s", "out_s", "z_student", "logit_s", "logits_s")
_LOGIT_T = ("logits_teacher", "teacher_logits", "t_logits", "y_t", "out_t", "z_teacher", "logit_t", "logits_t")
#: Parameter names recognised for each role, beyond the role's own name.
ALIASES = {
    "ys": ("ys", "labels", "label", "y", "targets", "target", "y_true", "classes"),
    "yt": ("yt", "labels_teacher", "teacher_labels"),
    "a": ("a", "a_s", "weights_s", "wa", "mass_s"),
    "b": ("b", "b_t", "weights_t", "wb", "mass_t"),
    "temperature": ("T", "tau", "temp"),
    "epsilon": ("eps", "reg", "epsilon", "sinkhorn_lambda", "lambda_", "lam"),
    "cost": ("cost_matrix", "ground_cost", "M", "C", "dist"),
    "n_iter": ("sinkhorn_iter", "n_iters", "num_iter", "num_iters", "iters", "n_iterations"),
    "bandwidth": ("sigma", "bw"),
}
#: Roles filled with values that cannot change the metric (see the module docstring).
FILLERS = ("logits_student", "logits_teacher", "features_student", "features_teacher")


def is_module(fn) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(fn, torch.nn.Module)


def module_device(fn):
    if is_module(fn):
        for t in list(fn.parameters()) + list(fn.buffers()):
            return str(t.device)
    return None


def name_of(fn) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


class Adapter:
    """``Adapter(fn, spec, argmap)(example)`` calls ``fn`` (a function or an ``nn.Module``, through
    ``forward``'s signature) with the example's arguments; see the module docstring.

    Examples
    --------
    >>> from kd2m_ref import METRICS
    >>> from kd2m_ref.testing.adapter import Adapter
    >>> def my_loss(f_s, f_t, labels, T=4.0): ...
    >>> slots = Adapter(my_loss, METRICS["hinton_kd"]).slots
    >>> for role, (_, name) in slots.items():  # labels: filled with zeros
    ...     print(role, "->", name)
    xs -> f_s
    xt -> f_t
    ys -> labels
    temperature -> T
    """

    def __init__(self, fn: Callable, spec, argmap: dict | None = None):
        self.fn, self.spec = fn, spec
        target = fn.forward if is_module(fn) else fn
        try:
            self.sig = inspect.signature(target)
        except (TypeError, ValueError):
            self.sig = None
        params = dict(self.sig.parameters) if self.sig else {}
        kinds = inspect.Parameter
        self.var_kw = any(p.kind is kinds.VAR_KEYWORD for p in params.values())
        named = [n for n, p in params.items() if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)]
        positional = [n for n, p in params.items() if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)]
        logits = "logits" in spec.needs
        labels = "labels" in spec.needs
        roles = {"xs", "xt", "ys", "yt", "a", "b", *spec.params, *FILLERS}
        self.slots: dict[str, tuple[str, Any]] = {}
        for role, where in (argmap or {}).items():
            if role not in roles:
                raise CheckError(f"argmap: unknown role {role!r}; roles of `{spec.key}`: {sorted(roles)}")
            if isinstance(where, int):
                self.slots[role] = ("pos", where)
            elif self.sig is not None and where not in params and not self.var_kw:
                raise CheckError(f"argmap: {name_of(fn)}{self.sig} has no argument {where!r} (for role {role!r})")
            else:
                self.slots[role] = ("kw", where)
        taken = {w for kind, w in self.slots.values() if kind == "kw"}

        def take(role, names):
            name = next((n for n in names if n in named and n not in taken), None)
            if name:
                self.slots[role] = ("kw", name)
                taken.add(name)

        for role, aliases in (("xs", (_LOGIT_S + _FEATURE_S) if logits else (_FEATURE_S + _LOGIT_S)),
                              ("xt", (_LOGIT_T + _FEATURE_T) if logits else (_FEATURE_T + _LOGIT_T))):
            if role not in self.slots:
                take(role, aliases)
        label_names = ALIASES["ys"] + ALIASES["yt"] if labels else ()
        free = [n for n in positional if n not in taken and n not in spec.params and n not in label_names]
        for role in ("xs", "xt"):
            if role in self.slots:
                continue
            if free:
                name = free.pop(0)
                self.slots[role] = ("kw", name) if params[name].kind is not kinds.POSITIONAL_ONLY else (
                    "pos", positional.index(name))
                taken.add(name)
            elif self.sig is None:
                self.slots[role] = ("pos", 0 if role == "xs" else 1)
            else:
                raise CheckError(f"cannot tell which argument of {name_of(fn)}{self.sig} takes the {role} input; "
                                 "pass argmap={'xs': ..., 'xt': ...} (CLI: --argmap NAME=xs)")
        for role in ["ys", "yt", "a", "b", *spec.params]:
            if role not in self.slots:
                take(role, (role,) + tuple(a for a in ALIASES.get(role, ()) if a not in spec.params or a == role))
        if labels and "ys" not in self.slots:
            rest = [n for n in positional if n not in taken]
            if rest:
                self.slots["ys"] = ("kw", rest[0])
                taken.add(rest[0])
            elif self.var_kw:
                self.slots["ys"] = ("kw", "ys")
            else:
                raise CheckError(f"`{spec.key}` needs labels but {name_of(fn)}{self.sig} takes no labels argument; "
                                 "pass argmap={'ys': '<name>'} (CLI: --argmap NAME=ys)")
        self._fill_required(params, taken, logits, labels)

    def _fill_required(self, params, taken, logits, labels):
        """Map every required argument left over to a filler role, or raise naming it."""
        kinds = inspect.Parameter
        positions = {w for kind, w in self.slots.values() if kind == "pos"}
        positional = [n for n, p in params.items() if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)]
        missing = [n for n, p in params.items()
                   if p.default is p.empty and p.kind not in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD)
                   and n not in taken and not (n in positional and positional.index(n) in positions)]
        unfilled = []
        for name in missing:
            if name in ALIASES["ys"] and not labels:
                role = "ys"
            elif name in _LOGIT_S + _LOGIT_T and not logits:
                role = "logits_student" if name in _LOGIT_S else "logits_teacher"
            elif name in _FEATURE_S + _FEATURE_T and logits:
                role = "features_student" if name in _FEATURE_S else "features_teacher"
            else:
                unfilled.append(name)
                continue
            if role in self.slots:
                unfilled.append(name)
                continue
            self.slots[role] = ("kw", name) if params[name].kind is not kinds.POSITIONAL_ONLY else (
                "pos", positional.index(name))
        if unfilled:
            raise CheckError(f"{name_of(self.fn)}{self.sig} requires {', '.join(map(repr, unfilled))}, which "
                             f"`{self.spec.key}` does not supply; map it to a role with argmap={{'<role>': "
                             f"'{unfilled[0]}'}} (CLI: --argmap {unfilled[0]}=<role>), roles: xs, xt, ys, yt, a, b, "
                             f"{', '.join(self.spec.params)}, {', '.join(FILLERS)}, or give it a default")

    def accepts(self, role: str) -> bool:
        return role in self.slots or (self.var_kw and role not in ("xs", "xt"))

    def _filler(self, role: str, xs):
        n = xs.shape[0]
        shape = (n,) if role == "ys" else (n, 2 if role.startswith("logits") else 1)
        if hasattr(xs, "new_zeros"):  # torch
            import torch

            return xs.new_zeros(shape, dtype=torch.int64) if role == "ys" else xs.new_zeros(shape).detach()
        return np.zeros(shape, dtype=np.int64 if role == "ys" else xs.dtype)

    def __call__(self, inputs: Example):
        values = {"xs": inputs.args[0], "xt": inputs.args[1], **inputs.kwargs}
        for role in self.slots:
            if role not in values and (role in FILLERS or role == "ys"):
                values[role] = self._filler(role, inputs.args[0])
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
        ordered = [args[i] for i in sorted(args)]
        if self.sig is not None:
            try:
                self.sig.bind(*ordered, **kwargs)
            except TypeError as exc:
                raise CheckError(f"cannot call {name_of(self.fn)}{self.sig} with roles "
                                 f"{sorted(values)}: {exc}; map the arguments with argmap") from None
        return self.fn(*ordered, **kwargs)
