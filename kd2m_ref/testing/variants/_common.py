"""Building blocks shared by the variant tables: parameter look-ups, the reference with changed
arguments, and variant builders parametrised by the metric key."""

from __future__ import annotations

import math

import numpy as np

from ..._conventions import class_blocks
from ...registry import METRICS
from ..examples import Example


class NotApplicable(Exception):
    """The variant equals the metric on these inputs (or is undefined there)."""


def not_applicable():
    raise NotApplicable


# ------------------------------------------------------------------------------------------ look-ups

def param(key: str, ex: Example, name: str):
    """The value of parameter ``name`` in ``ex`` (the metric's default when absent)."""
    spec = METRICS[key]
    return ex.kwargs.get(name, spec.params[name].default if name in spec.params else None)


def param_or(ex: Example, name: str, default):
    return ex.kwargs.get(name, default)


def _ref(key: str, ex: Example, args=None, **changes) -> float:
    """The reference of ``key`` on ``ex`` with some keyword arguments changed (``None`` drops one)."""
    kwargs = {k: v for k, v in {**ex.kwargs, **changes}.items() if v is not None or k not in changes}
    return float(METRICS[key].reference(*(ex.args if args is None else args), **kwargs))


def _keys_of(other: str, ex: Example, drop=()) -> dict:
    """``ex.kwargs`` restricted to the parameters of metric ``other`` (labels, weights included)."""
    spec = METRICS[other]
    keep = set(spec.params) | ({"ys", "yt"} if "labels" in spec.needs else set()) | {"a", "b"}
    return {k: v for k, v in ex.kwargs.items() if k in keep and k not in drop}


def _weights(ex: Example, n: int) -> np.ndarray:
    """The source weights ``a`` normalised (uniform when absent)."""
    w = ex.kwargs.get("a")
    return np.full(n, 1.0 / n) if w is None else np.asarray(w, float) / np.sum(w)


# ------------------------------------------------------------------------------------------ builders

def with_params(key: str, **changes):
    """The metric with some parameters changed (not applicable when they already have those values)."""
    def fn(ex):
        if all(param(key, ex, k) == v for k, v in changes.items()):
            raise NotApplicable
        return _ref(key, ex, **changes)
    return fn


def other_choices(key: str, name: str, choices, describe) -> dict:
    """One variant ``"<name>=<choice>"`` per value of a choice parameter (not applicable at its own value)."""
    return {f"{name}={choice}": (describe(choice), with_params(key, **{name: choice})) for choice in choices}


def root(key: str, power=lambda ex: float(param_or(ex, "p", 2.0))):
    """The ``power(ex)``-th root of the metric (W_p instead of W_p^p)."""
    def fn(ex):
        q = power(ex)
        if q == 1:
            raise NotApplicable
        return max(_ref(key, ex), 0.0) ** (1.0 / q)
    return fn


def scaled(key: str, factor):
    """The metric times ``factor(ex)`` (not applicable when the factor is 1)."""
    def fn(ex):
        f = factor(ex)
        if f == 1:
            raise NotApplicable
        return f * _ref(key, ex)
    return fn


def ignores_weights(key: str):
    """The metric with uniform sample weights."""
    def fn(ex):
        if ex.kwargs.get("a") is None and ex.kwargs.get("b") is None:
            raise NotApplicable
        return _ref(key, ex, a=None, b=None)
    return fn


def swapped_weights(key: str):
    """The metric with ``a`` and ``b`` exchanged."""
    def fn(ex):
        a, b = ex.kwargs.get("a"), ex.kwargs.get("b")
        if a is None or b is None or len(a) != len(b) or np.array_equal(a, b):
            raise NotApplicable
        return _ref(key, ex, a=b, b=a)
    return fn


def as_metric(other: str, drop=(), **changes):
    """Another registry metric on the same inputs (e.g. the marginal W instead of the conditional one)."""
    def fn(ex):
        kwargs = {**_keys_of(other, ex, drop), **changes}
        return float(METRICS[other].reference(*ex.args, **kwargs))
    return fn


def paired(key: str):
    """sum_i a_i ||x_i - y_i||^p: the paired cost, no transport (per class, class-weighted, for
    class-conditional keys)."""
    def fn(ex):
        xs, xt = ex.args
        if xs.shape != xt.shape or ex.kwargs.get("b") is not None:
            raise NotApplicable
        p = float(param_or(ex, "p", 2.0))
        cost = np.sum((xs - xt) ** 2, 1) ** (p / 2)
        w = _weights(ex, len(xs))
        if "ys" not in ex.kwargs:
            return float(w @ cost)
        return float(sum(blk.weight * (w[blk.index_s] @ cost[blk.index_s]) / w[blk.index_s].sum()
                         for blk in class_blocks(ex.kwargs["ys"], ex.kwargs.get("yt"), len(xs), len(xt),
                                                 weights=param(key, ex, "weights"), a=ex.kwargs.get("a"))))
    return fn


# ------------------------------------------------------------------------------------ class weights

_WEIGHT_DESC = {"uniform": "class weights 'uniform' (1/K over the classes present; the paper)",
                "prior": "class weights 'prior' (n_c / n; the theory)",
                "sum": "class weights 'sum' (1 per class; the paper's code)"}


def _uniform_all_classes(key: str):
    """Class weights 1/K with K = max label + 1 (classes absent from the batch counted)."""
    def fn(ex):
        ys = np.asarray(ex.kwargs["ys"])
        k_all, k_present = int(ys.max()) + 1, len(np.unique(ys))
        if k_all == k_present and param(key, ex, "weights") == "uniform":
            raise NotApplicable
        return _ref(key, ex, weights="sum") / k_all
    return fn


def class_weight_variants(key: str) -> dict:
    """The other class-weight conventions of a class-conditional metric."""
    return {**other_choices(key, "weights", ("uniform", "prior", "sum"), _WEIGHT_DESC.get),
            "weights=1/num_classes": ("class weights 1/K with K = max(label) + 1 (absent classes counted)",
                                      _uniform_all_classes(key))}


# -------------------------------------------------------------------------------------- evaluation

def evaluate(key: str, variants: dict, ex: Example) -> dict[str, float]:
    """``{name: value}`` of the applicable variants on ``ex`` (those that raise are left out)."""
    out = {}
    with np.errstate(all="ignore"):
        for name, (_, fn) in variants.items():
            try:
                value = fn(ex)
            except (NotApplicable, ValueError, ZeroDivisionError, RuntimeError, KeyError):
                continue
            if value is not None and math.isfinite(value):
                out[name] = float(value)
    return out
