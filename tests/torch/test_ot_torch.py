"""Torch OT family: gradients (gradcheck in float64, finite at student = teacher) and behaviour that
only the torch layer has (dtype/device of the result, float32 feasibility)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from kd2m_ref import reference as R  # noqa: E402
from kd2m_ref import torch as T  # noqa: E402
from kd2m_ref.testing.strategies import labelled_clouds, point_cloud  # noqa: E402


def _t(x, grad=False):
    return torch.tensor(x, dtype=torch.float64, requires_grad=grad)


def _generic(rng, n, m, d, scale=1.0):
    """Points in general position (distinct pairwise costs), where the optimal plan is unique and the
    exact-OT value is differentiable."""
    return rng.normal(size=(n, d)) * scale, rng.normal(size=(m, d)) * scale


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("sizes", [(5, 5), (4, 7)])
def test_gradcheck_wasserstein(p, sizes):
    """covers("wasserstein", "gradcheck"): points and weights, at a unique optimal plan."""
    rng = np.random.default_rng(int(p) * 10 + sizes[1])
    xs, xt = _generic(rng, *sizes, 3)
    a, b = rng.uniform(0.5, 1.5, sizes[0]), rng.uniform(0.5, 1.5, sizes[1])
    fn = lambda x, y, wa, wb: T.wasserstein(x, y, a=wa, b=wb, p=p)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (_t(xs, True), _t(xt, True), _t(a, True), _t(b, True)))


@pytest.mark.parametrize("key", ["wasserstein", "class_conditional_wasserstein", "joint_wasserstein",
                                 "sinkhorn_divergence", "sliced_wasserstein"])
@pytest.mark.parametrize("p", [1.0, 2.0])
def test_finite_gradient_at_equality(key, p):
    """covers("wasserstein", "finite_grad_at_equality") covers("class_conditional_wasserstein", "finite_grad_at_equality"):
    student = teacher is the fixed point of distillation; the gradient there is finite and zero."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 4))
    ys = torch.tensor(rng.integers(0, 3, 12))
    student = _t(x, True)
    kwargs = {"ys": ys} if key in ("class_conditional_wasserstein", "joint_wasserstein") else {}
    if key == "sinkhorn_divergence":
        kwargs = {"epsilon": 1.0, "tol": 1e-13, "max_iter": 100_000}
    value = getattr(T, key)(student, _t(x), p=p, **kwargs)
    value.backward()
    assert abs(float(value)) < 1e-12
    assert torch.isfinite(student.grad).all() and student.grad.abs().max() < 1e-9


def test_gradcheck_class_conditional_and_joint():
    """covers("class_conditional_wasserstein", "gradcheck") covers("joint_wasserstein", "gradcheck")"""
    rng = np.random.default_rng(1)
    xs, xt = _generic(rng, 9, 9, 2)
    ys = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    for weights in ("uniform", "prior", "sum"):
        fn = lambda x, y: T.class_conditional_wasserstein(x, y, ys=ys, weights=weights)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (_t(xs, True), _t(xt, True)))
    probs = torch.softmax(_t(rng.normal(size=(9, 3))), 1)
    for label_cost, yt in (("onehot", None), ("soft", probs), ("cross_entropy", probs)):
        fn = lambda x, y: T.joint_wasserstein(x, y, ys=ys, yt=yt, beta=0.7, label_cost=label_cost)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (_t(xs, True), _t(xt, True)))
    # soft labels of the student are differentiated through the label cost
    soft = torch.softmax(_t(rng.normal(size=(9, 3)), True), 1)
    fn = lambda q: T.joint_wasserstein(_t(xs), _t(xt), ys=q, yt=probs, label_cost="soft")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (soft,))


@pytest.mark.parametrize("key", ["sinkhorn", "sinkhorn_divergence"])
def test_gradcheck_sinkhorn(key):
    """covers("sinkhorn", "gradcheck") covers("sinkhorn_divergence", "gradcheck"): the envelope
    gradient of the converged problem matches finite differences."""
    rng = np.random.default_rng(2)
    xs, xt = _generic(rng, 5, 6, 2)
    a, b = rng.uniform(0.5, 1.5, 5), rng.uniform(0.5, 1.5, 6)
    fn = lambda x, y, wa, wb: getattr(T, key)(x, y, a=wa, b=wb, epsilon=0.5, tol=1e-14, max_iter=50_000)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (_t(xs, True), _t(xt, True), _t(a, True), _t(b, True)), atol=1e-6)


def test_gradcheck_sliced():
    """covers("sliced_wasserstein", "gradcheck")"""
    rng = np.random.default_rng(3)
    xs, xt = _generic(rng, 6, 4, 3)
    a, b = rng.uniform(0.5, 1.5, 6), rng.uniform(0.5, 1.5, 4)
    fn = lambda x, y, wa, wb: T.sliced_wasserstein(x, y, a=wa, b=wb, n_projections=5, seed=1)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (_t(xs, True), _t(xt, True), _t(a, True), _t(b, True)))


@settings(max_examples=20)
@given(labelled_clouds(), st.sampled_from(["uniform", "prior", "sum"]))
def test_float32_weights_never_infeasible(clouds, weights):
    """Float32 weights that do not sum to the same total are renormalised in float64
    (https://github.com/PythonOT/POT/issues/126: exact OT reported such inputs infeasible)."""
    xs, xt, ys = clouds
    a = torch.rand(len(xs), dtype=torch.float32) + 0.1
    b = torch.rand(len(xt), dtype=torch.float32) * 3 + 0.1
    value = T.wasserstein(torch.tensor(xs, dtype=torch.float32), torch.tensor(xt, dtype=torch.float32), a=a, b=b)
    ref = R.wasserstein(xs.astype(np.float32).astype(float), xt.astype(np.float32).astype(float),
                        a=a.double().numpy(), b=b.double().numpy())
    assert value.dtype == torch.float32 and abs(float(value) - ref) <= 1e-5 * (1 + ref)


@settings(max_examples=15)
@given(st.integers(2, 40), st.integers(1, 8), st.data())
def test_float32_close_points_no_cancellation(n, d, data):
    """Points 1e-4 apart at scale 100: the expanded form |x|^2+|y|^2-2xy would return noise (or
    negative costs) in float32; explicit differences keep the relative accuracy."""
    x = data.draw(point_cloud(n, d)) * 20 + 100
    y = x + 1e-4 * data.draw(point_cloud(n, d))
    ref = R.wasserstein(x.astype(np.float32).astype(float), y.astype(np.float32).astype(float))
    value = T.wasserstein(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
    assert abs(float(value) - ref) <= 1e-4 * ref + 1e-30


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ground_cost_of_a_cloud_against_itself_is_exactly_symmetric(dtype):
    """Sinkhorn's self terms take the averaged update only on an exactly symmetric cost: a cost formed
    in an order that breaks the symmetry by one rounding would silently double their iterations."""
    from kd2m_ref.torch._common import pairwise_cost

    x = torch.randn(300, 40, dtype=dtype, generator=torch.Generator().manual_seed(0))
    cost = pairwise_cost(x, x)
    assert torch.equal(cost, cost.T) and bool((cost.diagonal() == 0).all())


def test_exact_ot_between_large_equal_clouds_keeps_one_square_buffer():
    """Equal uniform clouds: the value and gradient come from the matched pairs; they equal the
    network simplex's on the same cost (a different path, the same linear program)."""
    g = torch.Generator().manual_seed(1)
    xs, xt = torch.randn(200, 5, dtype=torch.float64, generator=g), torch.randn(200, 5, dtype=torch.float64, generator=g)
    x = xs.clone().requires_grad_()
    value = T.wasserstein(x, xt)
    value.backward()
    a = torch.full((200,), 1 / 200, dtype=torch.float64, requires_grad=True)  # weights with a gradient: simplex path
    assert float(value) == pytest.approx(float(T.wasserstein(xs, xt, a=a)), rel=1e-12)
    assert torch.isfinite(x.grad).all()
