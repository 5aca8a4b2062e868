"""Every input gets the right number or a clear error naming the argument, in every layer.

One table drives it: each :class:`Case` says which metric keys it applies to (from the registry: the
parameters a key takes, whether it needs labels or logits), how it changes a valid call, and either
the ``ValueError`` message it must raise or that it must give the same number as the valid call.
One converter turns the NumPy inputs into each layer's types.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from conftest import BACKENDS, US, UT, XS, XT, YS, Raw, call, to_layer, valid_call
from kd2m_ref import METRICS
from kd2m_ref import reference as R

@dataclass(frozen=True)
class Case:
    name: str
    applies: Callable[[str], bool]
    change: Callable[[list, dict], None]  # edits (args, kwargs) of the valid call in place
    error: str | None = None  # regex of the ValueError; None: same number as the valid call
    backends: tuple[str, ...] = ("reference", "torch")


def takes(param):
    return lambda key: param in METRICS[key].params


def needs(what):
    return lambda key: what in METRICS[key].needs


def samples(key):
    """Point clouds (n, d): not logits, not batches of sets or feature maps (their own cases are below)."""
    return "logits" not in METRICS[key].needs and "feature_maps" not in METRICS[key].needs


def args_(i, value):
    def change(args, kwargs):
        args[i] = value(args[i]) if callable(value) else value
    return change


def kw(**values):
    def change(args, kwargs):
        for k, v in values.items():
            kwargs[k] = v(kwargs.get(k)) if callable(v) else v
    return change


def _requires_grad(x):
    import torch

    return torch.tensor(x, requires_grad=True)


CASES = [
    # points
    Case("nan in xs", samples, args_(0, np.where(np.eye(8, 3) > 0, np.nan, XS)), "xs contains NaN"),
    Case("inf in xt", samples, args_(1, np.where(np.eye(8, 3) > 0, np.inf, XT)), "xt contains NaN or inf"),
    Case("1-D xs", samples, args_(0, XS[:, 0]), "xs must be a 2-D array"),
    Case("3-D xt", samples, args_(1, XT[None]), "xt must be a 2-D array"),
    Case("mismatched features", samples, args_(1, XT[:, :2]), "xt has 2 features but the other input has 3"),
    Case("empty xt", lambda k: samples(k) and "labels" not in METRICS[k].needs, args_(1, XT[:0]),
         "xt must have at least 1 row"),
    Case("integer xs", samples, args_(0, np.ones((8, 3), dtype=np.int64)), "xs must have a floating dtype"),
    Case("numpy into torch", samples, args_(0, Raw(XS)), "xs must be a torch.Tensor", backends=("torch",)),
    Case("nested list into reference", samples, args_(0, lambda x: x.tolist()), None, backends=("reference",)),
    Case("tensor requiring grad into reference", samples, args_(0, _requires_grad), None, backends=("reference",)),
    # weights
    Case("negative weights", takes("a"), kw(a=np.array([1.0, -1, 1, 1, 1, 1, 1, 1])), "a has negative weights"),
    Case("zero-sum weights", takes("b"), kw(b=np.zeros(8)), "b sums to zero"),
    Case("weights wrong length", takes("a"), kw(a=np.ones(5)), "a must be a 1-D array of length 8"),
    Case("weights as a list", takes("a"), kw(a=[1.0] * 8), None),
    Case("weights as a string", takes("a"), kw(a="uniform"), "a must be"),
    Case("zero weight on a whole class", lambda k: takes("a")(k) and needs("labels")(k) and "joint" not in k,
         kw(a=np.array([0.0, 0, 0, 0, 1, 1, 1, 1])), "a sums to zero on class 0"),
    # labels
    Case("labels wrong length", needs("labels"), kw(ys=YS[:5]), "ys must have 8 rows"),
    Case("negative labels", needs("labels"), kw(ys=YS - 1), "ys has negative class indices"),
    Case("labels missing", needs("labels"), kw(ys=None), "ys is required"),
    Case("labels as a list", needs("labels"), kw(ys=YS.tolist()), None),
    Case("class on one side only", lambda k: needs("labels")(k) and "joint" not in k,
         kw(yt=np.array([0, 0, 0, 0, 0, 0, 0, 0])), r"class\(es\) \[1\] appear in ys only"),
    Case("num_classes too small", takes("label_cost"), kw(num_classes=1), "num_classes=1 is too small"),
    Case("num_classes zero", takes("label_cost"), kw(num_classes=0), "num_classes must be an integer >= 1"),
    # parameters: type and range, one message per parameter in every layer
    Case("p below 1", takes("p"), kw(p=0.5), "p must be >= 1"),
    Case("p negative", takes("p"), kw(p=-1.0), "p must be a finite positive"),
    Case("p as a string", takes("p"), kw(p="2"), "p must be a real number"),
    Case("p as a bool", takes("p"), kw(p=True), "p must be a real number"),
    Case("weights option", takes("weights"), kw(weights="mean"), "weights must be one of"),
    Case("label_cost option", takes("label_cost"), kw(label_cost="l1"), "label_cost must be one of"),
    Case("beta negative", takes("beta"), kw(beta=-1.0), "beta must be a finite non-negative"),
    Case("epsilon zero", lambda k: takes("epsilon")(k) and samples(k), kw(epsilon=0.0),
         "epsilon must be a finite positive"),
    Case("epsilon negative", takes("epsilon"), kw(epsilon=-0.1), "epsilon must be a finite"),
    Case("max_iter fractional", takes("max_iter"), kw(max_iter=2.5), "max_iter must be an integer >= 1"),
    Case("max_iter zero", takes("max_iter"), kw(max_iter=0), "max_iter must be an integer >= 1"),
    Case("tol negative", takes("tol"), kw(tol=-1e-9), "tol must be a finite positive"),
    Case("relative_epsilon not a bool", takes("relative_epsilon"), kw(relative_epsilon="yes"),
         "relative_epsilon must be True or False"),
    Case("seed negative", takes("seed"), kw(seed=-1), "seed must be a non-negative integer"),
    Case("seed fractional", takes("seed"), kw(seed=1.5), "seed must be a non-negative integer"),
    Case("n_projections zero", takes("n_projections"), kw(n_projections=0), "n_projections must be an integer >= 1"),
    Case("covariance option", takes("covariance"), kw(covariance="diagonal"), "covariance must be one of"),
    Case("gaussian estimator option", takes("covariance"), kw(estimator="n-1"), "estimator must be one of"),
    Case("eps negative", takes("eps"), kw(eps=-1.0), "eps must be a finite non-negative number"),
    Case("eps nan", takes("eps"), kw(eps=float("nan")), "eps must be a finite non-negative number"),
    Case("mean_weight negative", takes("mean_weight"), kw(mean_weight=-1.0),
         "mean_weight must be a finite non-negative number"),
    Case("direction option", takes("direction"), kw(direction="forward"), "direction must be one of"),
    Case("unbiased with one sample", lambda k: takes("covariance")(k) and samples(k),
         lambda a, k: (a.__setitem__(0, XS[:1]), a.__setitem__(1, XT[:1]), k.update(estimator="unbiased"),
                       k.update(ys=YS[:1]) if "ys" in k else None), "estimator='unbiased' needs at least 2 samples"),
    # MMD
    Case("unbiased MMD with one row", lambda k: takes("kernel")(k) and samples(k), lambda a, k: (a.__setitem__(0, XS[:1]),
                                                                     k.update(estimator="unbiased")),
         "xs must have at least 2 row"),
    Case("unknown kernel", takes("kernel"), kw(kernel="rbf"), "kernel must be one of"),
    Case("unknown MMD estimator", takes("kernel"), kw(estimator="v"), "estimator must be one of"),
    Case("unknown bandwidth rule", takes("bandwidth"), kw(bandwidth="silverman"), "bandwidth must be one of"),
    Case("negative bandwidth", takes("bandwidth"), kw(bandwidth=-1.0), "bandwidth must be a finite positive number"),
    Case("zero bandwidth", takes("bandwidth"), kw(bandwidth=0.0), "bandwidth must be a finite positive number"),
    Case("infinite bandwidth", takes("bandwidth"), kw(bandwidth=float("inf")), "bandwidth must be a finite positive"),
    Case("non-integer degree", takes("degree"), kw(kernel="polynomial", degree=1.5), "degree must be an integer >= 1"),
    Case("zero degree", takes("degree"), kw(kernel="polynomial", degree=0), "degree must be an integer >= 1"),
    Case("negative offset", takes("offset"), kw(kernel="polynomial", offset=-1.0), "offset must be a finite non-negative"),
    Case("detach_bandwidth not a bool", takes("detach_bandwidth"), kw(detach_bandwidth="no"),
         "detach_bandwidth must be True or False"),
    # logits
    Case("1-D student logits", needs("logits"), args_(0, US[0]), "logits_student must be a 2-D array"),
    Case("logit shapes differ", needs("logits"), args_(1, UT[:, :4]),
         r"logits_teacher has shape \(4, 4\) but logits_student has \(4, 5\)"),
    Case("fewer teacher rows", needs("logits"), args_(1, UT[:3]), "logits_teacher has shape"),
    Case("inf in teacher logits", needs("logits"), args_(1, np.where(np.eye(4, 5) > 0, np.inf, UT)),
         "logits_teacher contains NaN or inf"),
    Case("integer logits", needs("logits"), args_(0, np.ones((4, 5), dtype=np.int64)),
         "logits_student must have a floating dtype"),
    Case("no classes", needs("logits"), lambda a, k: (a.__setitem__(0, US[:, :0]), a.__setitem__(1, UT[:, :0])),
         "logits_student must have at least one row and one class"),
    Case("zero temperature", takes("temperature"), kw(temperature=0.0), "temperature must be a finite positive"),
    Case("temperature as a string", takes("temperature"), kw(temperature="4"), "temperature must be a real number"),
    Case("numpy logits into torch", needs("logits"), args_(0, Raw(US)), "logits_student must be a torch.Tensor",
         backends=("torch",)),
    # class histograms and their cost
    Case("cost of the wrong shape", takes("cost"), kw(cost=np.ones((4, 4))), r"cost must have shape \(5, 5\)"),
    Case("negative cost", takes("cost"), kw(cost=-np.ones((5, 5))), "cost must be non-negative"),
    Case("nan in cost", takes("cost"), kw(cost=np.where(np.eye(5) > 0, np.nan, 1.0)), "cost contains NaN"),
    Case("per-row costs", takes("cost"), kw(cost=np.broadcast_to(1 - np.eye(5), (4, 5, 5))), None),
    Case("negative probabilities", takes("cost"), kw(inputs="probabilities"),
         "logits_student: probability rows must be non-negative"),
    Case("unknown inputs", takes("cost"), kw(inputs="softmax"), "inputs must be one of"),
    Case("unknown value", takes("value"), kw(value="primal"), "value must be one of"),
    Case("n_iter zero", takes("n_iter"), kw(epsilon=0.1, n_iter=0), "n_iter must be an integer >= 1"),
    Case("n_iter with exact OT", takes("n_iter"), kw(n_iter=10), "epsilon=0 is exact OT"),
]

PARAMS = [pytest.param(key, case, backend, id=f"{key}-{case.name}-{backend}")
          for case in CASES for key in sorted(METRICS) if case.applies(key)
          for backend in case.backends if backend in BACKENDS]


def test_every_key_has_cases():
    """The table is not vacuous: every key meets at least five cases in every layer."""
    for key in METRICS:
        for backend in BACKENDS:
            assert sum(1 for p in PARAMS if p.values[0] == key and p.values[2] == backend) >= 5, (key, backend)


@pytest.mark.parametrize("key, case, backend", PARAMS)
def test_bad_input_table(key, case, backend):
    args, kwargs = valid_call(key)
    args, kwargs = list(args), dict(kwargs)
    case.change(args, kwargs)
    if case.error is not None:
        with pytest.raises(ValueError, match=case.error):
            call(key, backend, args, kwargs)
        return
    expected = float(call(key, backend, *valid_call(key)))
    assert float(call(key, backend, args, kwargs)) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_torch_inputs_must_share_dtype():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="xs and xt must share dtype"):
        METRICS["mmd"].torch(torch.tensor(XS), torch.tensor(XT, dtype=torch.float32))
    with pytest.raises(ValueError, match="logits_student and logits_teacher must share dtype"):
        METRICS["hinton_kd"].torch(torch.tensor(US), torch.tensor(UT, dtype=torch.float32))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("covariance", ["full", "diag"])
@pytest.mark.parametrize("case", ["n <= d", "constant feature", "collinear features"])
def test_kl_singular_covariance_suggests_eps(case, covariance, backend):
    """A singular fitted covariance: ValueError naming the side and suggesting eps; eps > 0 then works."""
    xs, xt = XS.copy(), XT.copy()
    if case == "n <= d":  # diagonal: singular only for a single sample (zero variances)
        xs, xt = (xs[:3], xt[:3]) if covariance == "full" else (xs[:1], xt[:1])
    elif case == "constant feature":
        xt[:, 1] = 2.0
    else:
        if covariance == "diag":
            pytest.skip("collinear features are not singular for the diagonal covariance")
        xt[:, 2] = xt[:, 0] - xt[:, 1]
    with pytest.raises(ValueError, match="singular.*eps|zero variance.*eps"):
        call("gaussian_kl", backend, [xs, xt], dict(covariance=covariance, eps=0.0))
    value = float(call("gaussian_kl", backend, [xs, xt], dict(covariance=covariance, eps=1e-3)))
    assert np.isfinite(value) and value > 0


MOMENT_CASES = [
    ("wasserstein", (np.zeros(2), np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.eye(2)), "cov_s must be symmetric"),
    ("wasserstein", (np.zeros(2), np.zeros(2), np.eye(2), np.diag([1.0, -1.0])), "cov_t must be positive semi-definite"),
    ("wasserstein", (np.zeros(2), np.zeros(2), np.ones(2), np.array([1.0, -1.0])), "cov_t has negative variances"),
    ("wasserstein", (np.zeros(2), np.zeros(3), np.eye(2), np.eye(2)), "mean_t must have shape"),
    ("kl", (np.zeros(2), np.zeros(2), np.eye(2), np.ones(2)), "both be full"),
    ("kl", (np.zeros(2), np.zeros(2), np.eye(3), np.eye(2)), "cov_s must have shape"),
    ("kl", (np.zeros(2), np.zeros(2), np.diag([1.0, 0.0]), np.eye(2)), "cov_s is singular.*eps"),
    ("kl", (np.array([np.nan, 0.0]), np.zeros(2), np.eye(2), np.eye(2)), "mean_s contains NaN"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("which, moments, message", MOMENT_CASES)
def test_moments_form_bad_input(which, moments, message, backend):
    """The parameter-level forms validate alike in both layers."""
    if backend == "reference":
        fn = R.gaussian_wasserstein_from_moments if which == "wasserstein" else R.gaussian_kl_from_moments
    else:
        import kd2m_ref.torch as T

        fn = T.gaussian_wasserstein_from_moments if which == "wasserstein" else T.gaussian_kl_from_moments
    with pytest.raises(ValueError, match=message):
        fn(*(to_layer(m, backend) for m in moments))


def test_torch_moments_must_be_tensors():
    pytest.importorskip("torch")
    import kd2m_ref.torch as T

    with pytest.raises(ValueError, match="mean_s must be a torch.Tensor"):
        T.gaussian_wasserstein_from_moments(np.zeros(2), np.zeros(2), np.eye(2), np.eye(2))


def test_table_fails_when_a_check_is_removed(monkeypatch):
    """Planted error: without its parameter check, the Sinkhorn reference runs on ``max_iter=2.5`` and
    the table's case for it fails."""
    case = next(c for c in CASES if c.name == "max_iter fractional")
    test_bad_input_table("sinkhorn", case, "reference")
    monkeypatch.setattr(sys.modules["kd2m_ref.reference.sinkhorn"], "check_sinkhorn_params", lambda *args: None)
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        test_bad_input_table("sinkhorn", case, "reference")


# ----------------------------------------------------------------------------- feature maps (WKD-F)

FS, FT = np.random.default_rng(1).normal(size=(2, 2, 3, 4, 4))


def _maps(xs=FS, xt=FT, **kwargs):
    return lambda: ([xs, xt], kwargs)


GRID_CASES = [
    ("3-D xs", _maps(xs=FS[0]), r"xs must be a 4-D array of shape \(batch, channels, height, width\)"),
    ("2-D xt", _maps(xt=FT[0, 0]), "xt must be a 4-D array"),
    ("channels differ", _maps(xt=FT[:, :2]), r"xt has shape \(2, 2, 4, 4\) but xs has \(2, 3, 4, 4\)"),
    ("batch differs", _maps(xt=FT[:1]), r"xt has shape \(1, 3, 4, 4\) but xs has"),
    ("no channels", _maps(xs=FS[:, :0], xt=FT[:, :0]), "xs must have at least one image, channel and pixel"),
    ("integer xs", _maps(xs=np.ones((2, 3, 4, 4), dtype=np.int64)), "xs must have a floating dtype"),
    ("nan in xs", _maps(xs=np.where(FS > 1, np.nan, FS)), "xs contains NaN or inf"),
    ("inf in xt", _maps(xt=np.where(FT > 1, np.inf, FT)), "xt contains NaN or inf"),
    ("grid taller than the maps", _maps(grid=(5, 1)),
     r"grid \(5, 1\) has 5 cells along the height but the feature maps have height 4"),
    ("grid wider than the maps", _maps(xs=FS[..., :3], xt=FT[..., :3], grid=4), "cells along the width"),
    ("one-pixel cells, unbiased", _maps(grid=4),
     "cells of one pixel: estimator='unbiased' needs at least 2 pixels per cell"),
    ("grid zero", _maps(grid=0), r"grid must be an integer >= 1 or a pair \(gh, gw\)"),
    ("grid of three", _maps(grid=(1, 2, 2)), "grid must be an integer >= 1 or a pair"),
    ("grid fractional", _maps(grid=1.5), "grid must be an integer >= 1 or a pair"),
    ("mean_weight negative", _maps(mean_weight=-1.0), "mean_weight must be a finite non-negative number"),
    ("mean_weight nan", _maps(mean_weight=float("nan")), "mean_weight must be a finite non-negative number"),
    ("covariance option", _maps(covariance="diagonal"), "covariance must be one of"),
    ("eps negative", _maps(eps=-1e-5), "eps must be a finite non-negative number"),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_grid_gaussian_wasserstein_valid_edge_cases(backend):
    """One-pixel cells are valid with estimator='mle' (variance 0), a grid pair and list are accepted,
    and a NumPy array into the torch layer names the argument."""
    mle = float(call("grid_gaussian_wasserstein", backend, [FS, FT], dict(grid=4, estimator="mle", eps=0.0)))
    assert np.isfinite(mle) and mle > 0
    pair = float(call("grid_gaussian_wasserstein", backend, [FS, FT], dict(grid=(2, 2))))
    assert pair == pytest.approx(float(call("grid_gaussian_wasserstein", backend, [FS, FT], dict(grid=[2, 2]))))
    assert pair == pytest.approx(float(call("grid_gaussian_wasserstein", backend, [FS, FT], dict(grid=2))))
    if backend == "torch":
        with pytest.raises(ValueError, match="xs must be a torch.Tensor"):
            call("grid_gaussian_wasserstein", backend, [Raw(FS), FT], {})



# --------------------------------------------------------------------------- sets of samples (NST)

SETS_S, SETS_T = np.random.default_rng(2).normal(size=(2, 4, 3, 3)), np.random.default_rng(3).normal(size=(2, 5, 3, 3))


def _sets(xs=SETS_S, xt=SETS_T, **kwargs):
    return lambda: ([xs, xt], kwargs)


SET_CASES = [
    ("2-D xs", _sets(xs=XS), r"xs must be a batch of sample sets of shape \(B, n, \*sample_shape\), at least 3-D"),
    ("1-D xt", _sets(xt=SETS_T[0, 0, 0]), "xt must be a batch of sample sets"),
    ("batch sizes differ", _sets(xt=SETS_T[:1]), "xt has 1 sets but xs has 2: the batch sizes B must match"),
    ("sample sizes differ", _sets(xt=SETS_T[..., :2]), r"xt has samples of 6 features \(shape \(2, 5, 3, 2\)\) but"),
    ("no samples", _sets(xs=SETS_S[:, :0]), "xs must have at least one set, 1 sample"),
    ("unbiased with one sample per set", _sets(xs=SETS_S[:, :1], estimator="unbiased"),
     r"xs must have at least one set, 2 sample\(s\) per set"),
    ("integer xs", _sets(xs=np.ones((2, 4, 3, 3), dtype=np.int64)), "xs must have a floating dtype"),
    ("nan in xs", _sets(xs=np.where(SETS_S > 1, np.nan, SETS_S)), "xs contains NaN or inf"),
    ("inf in xt", _sets(xt=np.where(SETS_T > 1, np.inf, SETS_T)), "xt contains NaN or inf"),
    ("normalize option", _sets(normalize="batch"), "normalize must be one of"),
    ("kernel option", _sets(kernel="rbf"), "kernel must be one of"),
    ("negative offset", _sets(offset=-1.0), "offset must be a finite non-negative"),
    ("zero bandwidth", _sets(kernel="gaussian", bandwidth=0.0), "bandwidth must be a finite positive number"),
]


FEATURE_MAP_CASES = ([("grid_gaussian_wasserstein", *c) for c in GRID_CASES]
                     + [("set_mmd", *c) for c in SET_CASES])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("key, name, make, message", FEATURE_MAP_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in FEATURE_MAP_CASES])
def test_feature_map_bad_input(key, name, make, message, backend):
    """Feature maps and batches of sets: a ValueError naming the argument, the same in every layer."""
    args, kwargs = make()
    with pytest.raises(ValueError, match=message):
        call(key, backend, args, kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_set_mmd_valid_edge_cases(backend):
    """n != m and one sample per set are valid; a zero sample with normalize="l2" stays zero (no error, a
    finite value, as F.normalize); a nested list feeds the reference; NumPy into torch names the argument."""
    zero = SETS_S.copy()
    zero[1, 3] = 0.0
    one = float(call("set_mmd", backend, [SETS_S[:, :1], SETS_T[:, :1]], {}))
    assert np.isfinite(one) and np.isfinite(float(call("set_mmd", backend, [zero, SETS_T], {})))
    if backend == "reference":
        assert R.set_mmd(SETS_S.tolist(), SETS_T) == R.set_mmd(SETS_S, SETS_T)
    else:
        with pytest.raises(ValueError, match="xs must be a torch.Tensor"):
            call("set_mmd", backend, [Raw(SETS_S), SETS_T], {})
