"""Torch Gaussian family: gradients (gradcheck, finite at student = teacher and for n < d), float32
accuracy where the textbook Bures formula cancels, and agreement of the parameter-level forms."""

import math

import mpmath as mp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kd2m_ref import oracle as O  # noqa: E402
from kd2m_ref import reference as R  # noqa: E402
from kd2m_ref import torch as T  # noqa: E402

F64 = torch.float64


def _t(x, dtype=F64, grad=False, device="cpu"):
    return torch.tensor(np.asarray(x), dtype=dtype, device=device, requires_grad=grad)


def _pair(n, d, seed, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(n, d, generator=g, dtype=dtype)
    xt = xs @ (torch.eye(d, dtype=dtype) + 0.3 * torch.randn(d, d, generator=g, dtype=dtype)) + 0.2
    return xs.requires_grad_(), xt.requires_grad_()


@pytest.mark.parametrize("n,d", [(5, 2), (3, 5), (1, 2)])
@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_gradcheck_wasserstein(n, d, covariance):
    """covers("gaussian_wasserstein", "gradcheck"): envelope gradient of the Procrustes form = the true
    gradient (n > d, n < d, n = 1), full and diagonal, with weights and the unbiased estimator."""
    xs, xt = _pair(n, d, n * d)
    assert torch.autograd.gradcheck(lambda a, b: T.gaussian_wasserstein(a, b, covariance=covariance), (xs, xt))
    if n > 1:
        w = torch.rand(n, dtype=F64, generator=torch.Generator().manual_seed(1)) + 0.2
        fn = lambda a, b: T.gaussian_wasserstein(a, b, a=w, b=w.flip(0), covariance=covariance,  # noqa: E731
                                                 estimator="unbiased", eps=0.05)
        assert torch.autograd.gradcheck(fn, (xs, xt))


@pytest.mark.parametrize("covariance", ["full", "diag"])
@pytest.mark.parametrize("direction", ["student_teacher", "teacher_student"])
def test_gradcheck_kl(covariance, direction):
    """covers("gaussian_kl", "gradcheck")"""
    xs, xt = _pair(6, 2, 5)
    assert torch.autograd.gradcheck(
        lambda a, b: T.gaussian_kl(a, b, covariance=covariance, direction=direction), (xs, xt))
    xs, xt = _pair(2, 3, 6)  # n < d with the ridge
    assert torch.autograd.gradcheck(lambda a, b: T.gaussian_kl(a, b, covariance=covariance, eps=0.1), (xs, xt))


def test_gradcheck_class_conditional():
    """covers("class_conditional_gaussian_wasserstein", "gradcheck") covers("class_conditional_gaussian_kl", "gradcheck")"""
    xs, xt = _pair(8, 2, 7)
    ys = torch.tensor([0, 1] * 4)
    assert torch.autograd.gradcheck(
        lambda a, b: T.class_conditional_gaussian_wasserstein(a, b, ys=ys, weights="prior"), (xs, xt))
    assert torch.autograd.gradcheck(
        lambda a, b: T.class_conditional_gaussian_kl(a, b, ys=ys, eps=0.1, weights="sum"), (xs, xt))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n,d", [(16, 4), (4, 16), (32, 32)])
def test_finite_gradient_at_equality(dtype, n, d):
    """covers("gaussian_wasserstein", "finite_grad_at_equality") covers("gaussian_kl", "finite_grad_at_equality"):
    at student = teacher (the fixed point of distillation) the value is 0 and the gradient exactly 0;
    just off it (xt = xs + 1e-6) the gradient is finite."""
    g = torch.Generator().manual_seed(n + d)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    for fn, kw in ((T.gaussian_wasserstein, {}), (T.gaussian_wasserstein, {"covariance": "diag"}),
                   (T.gaussian_kl, {"eps": 0.0 if n > d else 0.1}), (T.gaussian_kl, {"covariance": "diag"})):
        xs = x.clone().requires_grad_()
        value = fn(xs, x.clone(), **kw)
        (grad,) = torch.autograd.grad(value, xs)
        assert float(value) == 0.0 and bool((grad == 0).all()), (fn.__name__, kw)
        xs = x.clone().requires_grad_()
        (grad,) = torch.autograd.grad(fn(xs, x + 1e-6, **kw), xs)
        assert bool(grad.isfinite().all()), (fn.__name__, kw)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_gradient_rank_deficient(dtype):
    """covers("gaussian_wasserstein", "finite_grad_rank_deficient"): n < d, identity covariances (repeated
    eigenvalues: https://github.com/PythonOT/POT/issues/773), constant features, duplicated samples: finite gradients, and in float64
    they match a central finite difference."""
    g = torch.Generator().manual_seed(0)
    n, d = 6, 24
    xs, xt = torch.randn(n, d, generator=g, dtype=dtype), torch.randn(n, d, generator=g, dtype=dtype)
    eye = torch.cat([torch.eye(d, dtype=dtype), -torch.eye(d, dtype=dtype)])
    const = xs.clone()
    const[:, :5] = 1.0
    dup = torch.cat([xs[:3], xs[:3]])
    for a, b in ((xs, xt), (eye, eye * 1.5), (eye, eye[torch.randperm(2 * d, generator=g)]), (const, xt), (dup, xt),
                 (xs, xs[:1].expand(n, d))):
        for cov in ("full", "diag"):
            a_ = a.clone().requires_grad_()
            b_ = b.clone().requires_grad_()
            value = T.gaussian_wasserstein(a_, b_, covariance=cov)
            ga, gb = torch.autograd.grad(value, (a_, b_))
            assert bool(value.isfinite()) and bool(ga.isfinite().all()) and bool(gb.isfinite().all())
    if dtype == F64:  # directional derivative vs central difference, generic n < d
        direction = torch.randn(n, d, generator=g, dtype=F64)
        a_ = xs.clone().requires_grad_()
        (ga,) = torch.autograd.grad(T.gaussian_wasserstein(a_, xt), a_)
        h = 1e-6
        fd = (T.gaussian_wasserstein(xs + h * direction, xt) - T.gaussian_wasserstein(xs - h * direction, xt)) / (2 * h)
        assert abs(float((ga * direction).sum() - fd)) <= 1e-6 * (1 + abs(float(fd)))


def _ladder(dtype):
    rng = np.random.default_rng(11)
    d = 8
    x = rng.normal(size=(16, d))
    sym = rng.normal(size=(d, d))
    sym = (sym + sym.T) / 2
    for delta in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6):
        for n in (16, 4):
            xs = _t(x[:n], dtype)
            xt = _t(x[:n] @ (np.eye(d) + delta * sym) + delta, dtype)
            yield xs, xt


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_accuracy_near_equal_against_oracle(dtype, device):
    """covers("gaussian_wasserstein", "accuracy_near_equal"): torch W2 within 10 u sqrt(tr Σ_S + tr Σ_T) of
    the 50-digit oracle evaluated on the same rounded inputs, from W2/scale ~ 0.1 down to ~1e-6, for
    n > d and n < d (the textbook float32 formula is off by orders of magnitude there)."""
    u = torch.finfo(dtype).eps / 2
    for xs, xt in _ladder(dtype):
        value = float(T.gaussian_wasserstein(xs.to(device), xt.to(device)))
        xs64, xt64 = xs.double().numpy(), xt.double().numpy()
        scale = math.sqrt(np.trace(np.cov(xs64.T, bias=True)) + np.trace(np.cov(xt64.T, bias=True)))
        with mp.workdps(50):
            err = abs(mp.sqrt(O.gaussian_wasserstein(xs64, xt64)) - mp.sqrt(max(value, 0.0)))
        assert err <= 10 * u * scale, f"{dtype}: W2 error {float(err) / (u * scale):.1f} u scale"


def test_moments_forms_match_reference():
    """covers("gaussian_wasserstein", "moments_form") covers("gaussian_kl", "moments_form"): the torch
    parameter-level forms equal the reference ones and the sample-level forms."""
    xs, xt = _pair(10, 3, 2)
    for cov in ("full", "diag"):
        ms, cs = T.fit_gaussian(xs, covariance=cov)
        mt, ct = T.fit_gaussian(xt, covariance=cov)
        args = [v.detach().numpy() for v in (ms, mt, cs, ct)]
        w2 = T.gaussian_wasserstein_from_moments(ms, mt, cs, ct)
        kl = T.gaussian_kl_from_moments(ms, mt, cs, ct, direction="teacher_student")
        assert abs(float(w2) - R.gaussian_wasserstein_from_moments(*args)) <= 1e-12 * float(w2)
        assert abs(float(w2) - float(T.gaussian_wasserstein(xs, xt, covariance=cov))) <= 1e-12 * float(w2)
        assert abs(float(kl) - R.gaussian_kl_from_moments(*args, direction="teacher_student")) <= 1e-12 * float(kl)
        assert abs(float(kl) - float(T.gaussian_kl(xt, xs, covariance=cov))) <= 1e-12 * float(kl)
        ref_m, ref_c = R.fit_gaussian(xs.detach().numpy(), covariance=cov)
        assert np.allclose(ms.detach().numpy(), ref_m, rtol=1e-14, atol=1e-15)
        assert np.allclose(cs.detach().numpy(), ref_c, rtol=1e-13, atol=1e-15)


def test_class_conditional_matches_reference_with_weights():
    xs, xt = _pair(12, 2, 9)
    ys = torch.tensor([0, 1, 2, 1] * 3)
    a = torch.linspace(0.5, 1.5, 12, dtype=F64)
    for w in ("uniform", "prior", "sum"):
        got = T.class_conditional_gaussian_wasserstein(xs, xt, ys=ys, a=a, weights=w)
        ref = R.class_conditional_gaussian_wasserstein(xs.detach().numpy(), xt.detach().numpy(), ys=ys.numpy(),
                                                       a=a.numpy(), weights=w)
        assert abs(float(got) - ref) <= 1e-12 * ref


# ------------------------------------------------------------------------------ mean_weight and WKD-F

@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_gradcheck_mean_weight(covariance):
    """covers("gaussian_wasserstein", "mean_weight_gradcheck"): the weighted mean term differentiates
    (weights, unbiased estimator, ridge), and a weight 0 leaves the means without gradient."""
    xs, xt = _pair(5, 3, 4)
    fn = lambda a, b: T.gaussian_wasserstein(a, b, covariance=covariance, mean_weight=2.5, eps=0.05)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (xs, xt))
    (g,) = torch.autograd.grad(T.gaussian_wasserstein(xs, xt, covariance=covariance, mean_weight=0.0), xs)
    assert torch.allclose(g.sum(0), torch.zeros(3, dtype=F64), atol=1e-12)  # no pull on the mean


def _maps(shape, seed, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(*shape, generator=g, dtype=dtype)
    xt = 0.7 * xs + 0.5 * torch.randn(*shape, generator=g, dtype=dtype) + 0.3
    return xs.requires_grad_(), xt.requires_grad_()


@pytest.mark.parametrize("covariance", ["diag", "full"])
@pytest.mark.parametrize("grid, eps", [(1, 1e-5), (2, 0.0), ((2, 1), 0.1), (3, 1e-5)])
def test_gradcheck_grid(covariance, grid, eps):
    """covers("grid_gaussian_wasserstein", "gradcheck"): (B, C, 5, 4) maps, overlapping cells for grid 2
    and 3 (5 = 2 x 2 + 1), with eps 0 away from constant channels."""
    xs, xt = _maps((2, 3, 5, 4), 7)
    fn = lambda a, b: T.grid_gaussian_wasserstein(a, b, grid=grid, mean_weight=4.0, covariance=covariance,  # noqa: E731
                                                  eps=eps)
    assert torch.autograd.gradcheck(fn, (xs, xt))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("covariance", ["diag", "full"])
@pytest.mark.parametrize("eps", [0.0, 1e-5])
def test_grid_finite_gradient_at_equality(dtype, covariance, eps):
    """covers("grid_gaussian_wasserstein", "finite_grad_at_equality"): value 0 and gradient exactly 0 at
    student = teacher, with a constant channel too."""
    xs, _ = _maps((2, 3, 4, 4), 3, dtype)
    xs = xs.detach().clone()
    xs[:, 1] = 0.5
    xs.requires_grad_()
    value = T.grid_gaussian_wasserstein(xs, xs.detach().clone(), grid=2, covariance=covariance, eps=eps)
    (g,) = torch.autograd.grad(value, xs)
    assert float(value.detach()) == 0.0 and bool(torch.isfinite(g).all()) and float(g.abs().max()) == 0.0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_grid_eps_zero_constant_channel(dtype):
    """covers("grid_gaussian_wasserstein", "eps_zero_constant_channel"): with eps = 0 a channel constant on
    a cell has sigma = 0, a kink of the loss (sqrt(var) has an infinite derivative there). The value is
    the reference's and the gradient is finite: the zero subgradient for that channel's sigma; WKD-F's
    own torch.sqrt(var) gives NaN there, eps = 1e-5 makes it smooth."""
    xs, xt = _maps((1, 2, 4, 4), 5, dtype)
    xs = xs.detach().clone()
    xs[0, 0] = 1.5  # student channel 0 constant: sigma_S = 0 in every cell
    xs.requires_grad_()
    value = T.grid_gaussian_wasserstein(xs, xt.detach(), grid=2, eps=0.0)
    ref = R.grid_gaussian_wasserstein(xs.detach().double().numpy(), xt.detach().double().numpy(), grid=2, eps=0.0)
    assert abs(float(value.detach()) - ref) <= 1e-5 * ref
    (g,) = torch.autograd.grad(value, xs)
    assert bool(torch.isfinite(g).all())
    # the constant channel gets only its mean term's pull: the same within each cell's pixels
    mean_only = T.grid_gaussian_wasserstein(xs, xt.detach(), grid=2, eps=0.0, mean_weight=0.0)
    (g0,) = torch.autograd.grad(mean_only, xs)
    assert float(g0[0, 0].abs().max()) == 0.0
    published = (xs[:, :, :2, :2].reshape(1, 2, -1).var(-1) + 0.0).sqrt().sum()
    (gp,) = torch.autograd.grad(published, xs)
    assert not bool(torch.isfinite(gp).all())


def test_grid_cells_are_adaptive_pooling():
    """covers("grid_gaussian_wasserstein", "cells_adaptive_pooling"): the cell means are
    F.adaptive_avg_pool2d of the maps, overlapping cells included."""
    import torch.nn.functional as F

    from kd2m_ref._conventions import grid_cells

    x = torch.randn(2, 3, 5, 7, dtype=F64)
    for grid in ((2, 3), (3, 2), (5, 7), (1, 4)):
        pooled = F.adaptive_avg_pool2d(x, grid)
        cells = grid_cells(5, 7, grid)
        means = torch.stack([x[:, :, r, c].mean((-2, -1)) for r, c in cells], -1).reshape(pooled.shape)
        assert torch.allclose(means, pooled, rtol=1e-14, atol=1e-15)


def test_grid_diag_batched_matches_loop():
    """The batched diagonal form equals gaussian_wasserstein image by image and cell by cell."""
    from kd2m_ref._conventions import grid_cells

    xs, xt = _maps((3, 4, 5, 5), 11)
    got = T.grid_gaussian_wasserstein(xs, xt, grid=2, mean_weight=2.0)
    loop = sum(T.gaussian_wasserstein(xs[b, :, r, c].reshape(4, -1).T, xt[b, :, r, c].reshape(4, -1).T,
                                      covariance="diag", estimator="unbiased", eps=1e-5, mean_weight=2.0)
               for b in range(3) for r, c in grid_cells(5, 5, 2)) / 12
    assert abs(float(got) - float(loop)) <= 1e-13 * float(loop)
