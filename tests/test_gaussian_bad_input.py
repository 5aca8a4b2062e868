"""Bad input to the Gaussian family gets a ValueError naming the argument (reference and torch);
singular covariances in KL get a ValueError that suggests ``eps``, never NaN or inf."""

import numpy as np
import pytest

from conftest import BACKENDS
from kd2m_ref import METRICS
from kd2m_ref import reference as R

GAUSSIAN_KEYS = sorted(k for k, s in METRICS.items() if s.family == "gaussian")
RNG = np.random.default_rng(0)
XS, XT = RNG.normal(size=(8, 3)), RNG.normal(size=(8, 3))
YS = np.array([0, 0, 0, 0, 1, 1, 1, 1])


def _conv(v):
    import torch

    if isinstance(v, np.ndarray) and v.dtype.kind in "fiu":
        return torch.tensor(v)
    return v


def _call(key, backend, xs=XS, xt=XT, **kwargs):
    spec = METRICS[key]
    if "labels" in spec.needs:
        kwargs.setdefault("ys", YS)
    if "kl" in key and "eps" not in kwargs:
        kwargs["eps"] = 0.1  # nonsingular per-class covariances; singularity is tested below
    fn = spec.reference if backend == "reference" else spec.torch
    if backend == "torch":
        xs, xt, kwargs = _conv(xs), _conv(xt), {k: _conv(v) for k, v in kwargs.items()}
    return fn(xs, xt, **kwargs)


CASES = {
    "nan in xs": (dict(xs=np.where(np.eye(8, 3) > 0, np.nan, XS)), "xs contains NaN"),
    "inf in xt": (dict(xt=np.where(np.eye(8, 3) > 0, np.inf, XT)), "xt contains NaN or inf"),
    "1-D xs": (dict(xs=XS[:, 0]), "xs must be a 2-D array"),
    "mismatched features": (dict(xt=XT[:, :2]), "xt has 2 features but the other input has 3"),
    "empty xt": (dict(xt=XT[:0]), "xt must have at least 1 row"),
    "integer xs": (dict(xs=np.ones((8, 3), dtype=np.int64)), "xs must have a floating dtype"),
    "negative weights": (dict(a=np.array([1.0, -1, 1, 1, 1, 1, 1, 1])), "a has negative weights"),
    "zero-sum weights": (dict(b=np.zeros(8)), "b sums to zero"),
    "weights wrong length": (dict(a=np.ones(5)), "a must be a 1-D array of length 8"),
    "covariance option": (dict(covariance="diagonal"), "covariance must be one of"),
    "estimator option": (dict(estimator="n-1"), "estimator must be one of"),
    "negative eps": (dict(eps=-1.0), "eps must be a finite non-negative number"),
    "nan eps": (dict(eps=float("nan")), "eps must be a finite non-negative number"),
    "unbiased with one sample": (dict(xs=XS[:1], xt=XT[:1], ys=YS[:1], estimator="unbiased"),
                                 "estimator='unbiased' needs at least 2 samples"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("key", GAUSSIAN_KEYS)
def test_bad_samples_and_options(key, case, backend):
    kwargs, message = CASES[case]
    if "ys" in kwargs and "labels" not in METRICS[key].needs:
        kwargs = {k: v for k, v in kwargs.items() if k != "ys"}
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        _call(key, backend, **kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("key", [k for k in GAUSSIAN_KEYS if "kl" in k])
def test_bad_direction(key, backend):
    with pytest.raises(ValueError, match="direction must be one of"):
        _call(key, backend, direction="forward")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("key", [k for k in GAUSSIAN_KEYS if "class_conditional" in k])
def test_class_on_one_side_only(key, backend):
    with pytest.raises(ValueError, match="appear in ys only"):
        _call(key, backend, yt=np.array([0, 0, 0, 0, 0, 0, 0, 0]))


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
    key = "gaussian_kl"
    with pytest.raises(ValueError, match="singular.*eps|zero variance.*eps"):
        _call(key, backend, xs=xs, xt=xt, covariance=covariance, eps=0.0)
    value = float(_call(key, backend, xs=xs, xt=xt, covariance=covariance, eps=1e-3))
    assert np.isfinite(value) and value > 0


def test_moments_form_bad_input():
    m, c = np.zeros(2), np.eye(2)
    with pytest.raises(ValueError, match="cov_s must be symmetric"):
        R.gaussian_wasserstein_from_moments(m, m, np.array([[1.0, 0.5], [0.0, 1.0]]), c)
    with pytest.raises(ValueError, match="cov_t must be positive semi-definite"):
        R.gaussian_wasserstein_from_moments(m, m, c, np.diag([1.0, -1.0]))
    with pytest.raises(ValueError, match="cov_t has negative variances"):
        R.gaussian_wasserstein_from_moments(m, m, np.ones(2), np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="mean_t must have shape"):
        R.gaussian_wasserstein_from_moments(m, np.zeros(3), c, c)
    with pytest.raises(ValueError, match="both be full"):
        R.gaussian_kl_from_moments(m, m, c, np.ones(2))
    with pytest.raises(ValueError, match="cov_s must have shape"):
        R.gaussian_kl_from_moments(m, m, np.eye(3), c)
    with pytest.raises(ValueError, match="cov_s is singular.*eps"):
        R.gaussian_kl_from_moments(m, m, np.diag([1.0, 0.0]), c)
    with pytest.raises(ValueError, match="mean_s contains NaN"):
        R.gaussian_kl_from_moments(np.array([np.nan, 0.0]), m, c, c)
