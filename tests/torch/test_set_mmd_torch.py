"""Torch per-set MMD^2 (NST): gradients (gradcheck in float64, finite at student = teacher), the published
NST form, and the batched kernel against a loop over the sets."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = pytest.importorskip("torch.nn.functional")

from kd2m_ref import reference as R  # noqa: E402
from kd2m_ref import torch as T  # noqa: E402
from kd2m_ref.torch.kernel import normalize_samples  # noqa: E402

KERNELS = [("polynomial", "mean"), ("gaussian", "mean"), ("gaussian", "median"), ("gaussian", 0.8),
           ("laplacian", "mean"), ("linear", "mean")]


def _t(x, grad=False):
    return torch.tensor(x, dtype=torch.float64, requires_grad=grad)


def _maps(seed, c_s=4, c_t=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(2, c_s, 2, 3)), rng.normal(size=(2, c_t, 2, 3)) + 0.3


@pytest.mark.parametrize("normalize", ["l2", "none"])
@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
@pytest.mark.parametrize("kernel,bandwidth", KERNELS)
def test_gradcheck_set_mmd(kernel, bandwidth, estimator, normalize):
    """covers("set_mmd", "gradcheck"): through the normalisation, the kernel and, with detach_bandwidth=False,
    each set's bandwidth rule; C_s != C_t (general position: distinct distances, so the median is
    differentiable)."""
    xs, xt = _maps(21)
    fn = lambda x, y: T.set_mmd(x, y, kernel=kernel, bandwidth=bandwidth, estimator=estimator,  # noqa: E731
                                degree=3, offset=0.5, normalize=normalize, detach_bandwidth=False)
    assert torch.autograd.gradcheck(fn, (_t(xs, True), _t(xt, True)))


@pytest.mark.parametrize("detach", [True, False])
@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
@pytest.mark.parametrize("kernel,bandwidth", KERNELS)
def test_set_mmd_finite_gradient_at_equality(kernel, bandwidth, estimator, detach):
    """covers("set_mmd", "finite_grad_at_equality"): student = teacher, with a dead (all-zero) channel: finite
    gradient, and for the V-statistic value 0 and gradient 0 on the live channels."""
    x, _ = _maps(5)
    x[1, 2] = 0.0
    student = _t(x, True)
    value = T.set_mmd(student, _t(x), kernel=kernel, bandwidth=bandwidth, estimator=estimator, detach_bandwidth=detach)
    value.backward()
    assert torch.isfinite(student.grad).all()
    if estimator == "biased":
        live = torch.ones(x.shape[:2], dtype=torch.bool)
        live[1, 2] = False
        assert abs(float(value.detach())) < 1e-14 and student.grad[live].abs().max() < 1e-12


def _nst_published(f_s, f_t):
    """NST as published (RepDistiller / mdistiller ``NSTLoss.nst_loss``, full_loss=True, equal H·W)."""
    f_s = F.normalize(f_s.view(f_s.shape[0], f_s.shape[1], -1), dim=2)
    f_t = F.normalize(f_t.view(f_t.shape[0], f_t.shape[1], -1), dim=2)

    def poly_kernel(a, b):
        return (a.unsqueeze(1) * b.unsqueeze(2)).sum(-1).pow(2)

    return poly_kernel(f_t, f_t).mean().detach() + poly_kernel(f_s, f_s).mean() - 2 * poly_kernel(f_s, f_t).mean()


@pytest.mark.parametrize("c_s,c_t", [(4, 4), (6, 3)])
def test_defaults_are_the_published_nst_loss(c_s, c_t):
    """covers("set_mmd", "published_form"): the defaults (polynomial (x.y)^2, biased, "l2") give the published
    NST value and the same student gradient, dead channels included (F.normalize keeps them zero)."""
    xs, xt = _maps(8, c_s, c_t)
    xs[0, 1] = 0.0
    xt[1, 0] = 0.0
    a, b = _t(xs, True), _t(xs, True)
    published, ours = _nst_published(a, _t(xt)), T.set_mmd(b, _t(xt))
    published.backward()
    ours.backward()
    assert float(ours) == pytest.approx(float(published), rel=1e-13, abs=1e-15)
    assert float(ours) == pytest.approx(R.set_mmd(xs, xt), rel=1e-13, abs=1e-15)
    assert torch.allclose(a.grad, b.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kernel,bandwidth", KERNELS)
def test_batched_equals_a_loop_of_mmd(kernel, bandwidth):
    """The one batched kernel product (or the per-set blocks) gives the mean of ``mmd`` on each normalised set."""
    xs, xt = _maps(13, 5, 2)
    kw = dict(kernel=kernel, bandwidth=bandwidth, degree=2, offset=0.0)
    value = T.set_mmd(_t(xs), _t(xt), **kw)
    norm = lambda x: normalize_samples(_t(x).flatten(2))  # noqa: E731
    loop = torch.stack([T.mmd(u, v, **kw) for u, v in zip(norm(xs), norm(xt))]).mean()
    assert float(value) == pytest.approx(float(loop), rel=1e-14, abs=1e-16)
