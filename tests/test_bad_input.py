"""Bad input gets a ValueError naming the argument, in the reference and in torch, for every sample
metric of the registry that takes point clouds."""

import numpy as np
import pytest

from conftest import BACKENDS
from kd2m_ref import METRICS

SAMPLE_KEYS = sorted(k for k, s in METRICS.items() if s.family == "optimal transport")
RNG = np.random.default_rng(0)
XS, XT = RNG.normal(size=(6, 3)), RNG.normal(size=(6, 3))
YS = np.array([0, 0, 1, 1, 2, 2])


def _call(key, backend, xs=XS, xt=XT, **kwargs):
    spec = METRICS[key]
    if "labels" in spec.needs:
        kwargs.setdefault("ys", YS)
    fn = spec.reference if backend == "reference" else spec.torch
    if backend == "torch":
        import torch

        def conv(v):
            if isinstance(v, np.ndarray):
                return torch.tensor(v) if v.dtype.kind in "fiu" else v
            return v
        xs, xt, kwargs = conv(xs), conv(xt), {k: conv(v) for k, v in kwargs.items()}
    return fn(xs, xt, **kwargs)


CASES = {
    "nan in xs": (dict(xs=np.where(np.eye(6, 3) > 0, np.nan, XS)), "xs contains NaN"),
    "inf in xt": (dict(xt=np.where(np.eye(6, 3) > 0, np.inf, XT)), "xt contains NaN or inf"),
    "1-D xs": (dict(xs=XS[:, 0]), "xs must be a 2-D array"),
    "3-D xt": (dict(xt=XT[None]), "xt must be a 2-D array"),
    "mismatched features": (dict(xt=XT[:, :2]), "xt has 2 features but the other input has 3"),
    "empty xs": (dict(xs=XS[:0]), "xs must have at least 1 row"),
    "integer xs": (dict(xs=np.ones((6, 3), dtype=np.int64)), "xs must have a floating dtype"),
    "negative weights": (dict(a=np.array([1.0, -1, 1, 1, 1, 1])), "a has negative weights"),
    "zero-sum weights": (dict(b=np.zeros(6)), "b sums to zero"),
    "weights wrong length": (dict(a=np.ones(5)), "a must be a 1-D array of length 6"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("key", SAMPLE_KEYS)
def test_bad_points_and_weights(key, case, backend):
    kwargs, message = CASES[case]
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        _call(key, backend, **kwargs)


LABELLED = [k for k in SAMPLE_KEYS if "labels" in METRICS[k].needs]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("key", LABELLED)
def test_bad_labels(key, backend):
    with pytest.raises(ValueError, match="ys must have 6 rows"):
        _call(key, backend, ys=YS[:5])
    with pytest.raises(ValueError, match="ys has negative class indices"):
        _call(key, backend, ys=YS - 1)
    with pytest.raises(ValueError, match="ys is required"):
        _call(key, backend, ys=None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_class_on_one_side_only(backend):
    with pytest.raises(ValueError, match=r"class\(es\) \[2\] appear in ys only"):
        _call("class_conditional_wasserstein", backend, yt=np.array([0, 0, 1, 1, 1, 1]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("param, value, message", [
    ("p", 0.5, "p must be >= 1"), ("p", -1.0, "p must be a finite positive"),
    ("weights", "mean", "weights must be one of"), ("label_cost", "l1", "label_cost must be one of"),
    ("epsilon", 0.0, "epsilon must be a finite positive"), ("beta", -1.0, "beta must be a finite non-negative"),
])
def test_bad_parameters(backend, param, value, message):
    keys = [k for k in SAMPLE_KEYS if param in METRICS[k].params]
    assert keys
    for key in keys:
        with pytest.raises(ValueError, match=message):
            _call(key, backend, **{param: value})
