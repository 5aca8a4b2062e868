"""Torch MMD^2 and Hinton KD: gradients (gradcheck in float64, finite at student = teacher, the closed
form of the KD gradient) and what only the torch layer has (detached bandwidth)."""

from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kd2m_ref import oracle as O  # noqa: E402
from kd2m_ref import reference as R  # noqa: E402
from kd2m_ref import torch as T  # noqa: E402
from kd2m_ref.testing.examples import Example  # noqa: E402
from kd2m_ref.testing.tolerance import hinton_kd_tolerance  # noqa: E402
from kd2m_ref.torch.kernel import bandwidth_from_rule  # noqa: E402

KERNELS = [("gaussian", "mean"), ("gaussian", "median"), ("gaussian", 0.8), ("laplacian", "mean"),
           ("laplacian", 1.5), ("linear", "mean"), ("polynomial", "mean")]


def _t(x, grad=False):
    return torch.tensor(x, dtype=torch.float64, requires_grad=grad)


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
@pytest.mark.parametrize("kernel,bandwidth", KERNELS)
def test_gradcheck_mmd(kernel, bandwidth, estimator):
    """covers("mmd", "gradcheck"): through the kernel and, with detach_bandwidth=False, through the rule
    (points in general position: distinct distances, so the median is differentiable)."""
    rng = np.random.default_rng(11)
    xs, xt = rng.normal(size=(5, 3)), rng.normal(size=(4, 3)) + 0.3
    fn = lambda x, y: T.mmd(x, y, kernel=kernel, bandwidth=bandwidth, estimator=estimator,  # noqa: E731
                            degree=3, offset=0.5, detach_bandwidth=False)
    assert torch.autograd.gradcheck(fn, (_t(xs, True), _t(xt, True)))


@pytest.mark.parametrize("rule", ["mean", "median"])
def test_detached_bandwidth_is_a_constant_in_the_backward(rule):
    """detach_bandwidth=True (the paper's code): same value, and the gradient of the fixed-bandwidth MMD
    at s = the rule's value; detach_bandwidth=False: a different (the full) gradient."""
    rng = np.random.default_rng(12)
    xs, xt = rng.normal(size=(6, 2)), rng.normal(size=(5, 2))
    s = float(bandwidth_from_rule(_t(xs), _t(xt), rule))
    grads = {}
    for name, bw, detach in (("detached", rule, True), ("fixed", s, True), ("full", rule, False)):
        x, y = _t(xs, True), _t(xt, True)
        value = T.mmd(x, y, bandwidth=bw, detach_bandwidth=detach)
        value.backward()
        grads[name] = (float(value.detach()), torch.cat([x.grad, y.grad]))
    assert grads["detached"][0] == pytest.approx(grads["fixed"][0], rel=1e-14)
    assert torch.allclose(grads["detached"][1], grads["fixed"][1], rtol=1e-12, atol=1e-15)
    assert not torch.allclose(grads["detached"][1], grads["full"][1], rtol=1e-6)
    assert grads["detached"][0] == pytest.approx(R.mmd(xs, xt, bandwidth=rule), rel=1e-13)


@pytest.mark.parametrize("detach", [True, False])
@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
@pytest.mark.parametrize("kernel,bandwidth", KERNELS)
def test_mmd_finite_gradient_at_equality(kernel, bandwidth, estimator, detach):
    """covers("mmd", "finite_grad_at_equality"): student = teacher (zero distances everywhere on the
    diagonal, also inside the bandwidth rule): finite gradient, zero for the V-statistic."""
    x = np.random.default_rng(0).normal(size=(8, 3))
    student = _t(x, True)
    value = T.mmd(student, _t(x), kernel=kernel, bandwidth=bandwidth, estimator=estimator, detach_bandwidth=detach)
    value.backward()
    assert torch.isfinite(student.grad).all()
    if estimator == "biased":
        assert abs(float(value.detach())) < 1e-14 and student.grad.abs().max() < 1e-12


@pytest.mark.parametrize("direction", ["teacher_student", "student_teacher"])
def test_gradcheck_hinton_kd(direction):
    """covers("hinton_kd", "gradcheck"): both logit arguments."""
    rng = np.random.default_rng(13)
    us, ut = rng.normal(size=(4, 5)) * 2, rng.normal(size=(4, 5)) * 2
    fn = lambda a, b: T.hinton_kd(a, b, temperature=1.7, direction=direction)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (_t(us, True), _t(ut, True)))


@pytest.mark.parametrize("t", [0.5, 1.0, 4.0])
def test_hinton_closed_form_gradient(t):
    """covers("hinton_kd", "closed_form_gradient"): d/du_S of T^2 KL(p_T || p_S), batch mean, is
    T (p_S - p_T) / B; of T^2 KL(p_S || p_T) it is T p_S * (l - KL_row) / B with l = log p_S - log p_T."""
    rng = np.random.default_rng(14)
    us, ut = rng.normal(size=(6, 4)) * 3, rng.normal(size=(6, 4)) * 3
    b = len(us)
    ps, pt = torch.softmax(_t(us) / t, 1), torch.softmax(_t(ut) / t, 1)
    student = _t(us, True)
    T.hinton_kd(student, _t(ut), temperature=t).backward()
    assert torch.allclose(student.grad, t * (ps - pt) / b, rtol=1e-12, atol=1e-15)
    student = _t(us, True)
    T.hinton_kd(student, _t(ut), temperature=t, direction="student_teacher").backward()
    ell = torch.log(ps) - torch.log(pt)
    expected = t * ps * (ell - (ps * ell).sum(1, keepdim=True)) / b
    assert torch.allclose(student.grad, expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("direction", ["teacher_student", "student_teacher"])
def test_hinton_finite_gradient_at_equality(direction):
    """covers("hinton_kd", "finite_grad_at_equality"): student = teacher, also with a saturated softmax
    (logits 1e3 apart, where log(softmax) would give -inf and NaN gradients)."""
    u = np.array([[0.0, 1e3, -1e3], [2.0, 2.0, 2.0], [1.0, -3.0, 0.5]])
    student = _t(u, True)
    value = T.hinton_kd(student, _t(u), temperature=2.0, direction=direction)
    value.backward()
    assert float(value.detach()) == 0.0
    assert torch.isfinite(student.grad).all() and student.grad.abs().max() < 1e-15  # rounding of T(p_S - p_T)


# --- extremes: bandwidths 1e-300 / 1e300, temperatures 1e-3 ... 1e6 --------------------------------------

# distinct rows within each cloud; rows 1 and 2 of _XT coincide with rows 1 and 2 of _XS
_XS = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 1.0], [-1.0, -1.0]])
_XT = np.array([[1.5, -2.0], [1.0, 0.0], [0.0, 2.0], [5.0, 5.0]])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("s", [1e-300, 1e300])
@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
@pytest.mark.parametrize("kernel", ["gaussian", "laplacian"])
def test_mmd_extreme_bandwidth_limits(kernel, estimator, s, dtype):
    """covers("mmd", "finite_grad_at_equality"): s = 1e-300 gives k = identity on distinct points (V = 1/n +
    1/m - 2c/(nm), U = -2c/(nm), c = 2 coincident cross pairs), s = 1e300 gives k = 1 (V = U = 0), also in
    float32, where s rounds to 0 or inf (ZeroDivisionError / OverflowError from s**2 before, NaN from 0/0
    on the diagonal); at student = teacher the gradient is finite and zero."""
    n, m = len(_XS), len(_XT)
    limit = Fraction(0) if s > 1 else ((Fraction(1, n) + Fraction(1, m) if estimator == "biased" else 0)
                                       - Fraction(4, n * m))
    kw = dict(kernel=kernel, bandwidth=s, estimator=estimator)
    value = T.mmd(torch.tensor(_XS, dtype=dtype), torch.tensor(_XT, dtype=dtype), **kw)
    assert value.dtype == dtype
    assert float(value) == pytest.approx(float(limit), rel=0, abs=4 * torch.finfo(dtype).eps)
    student = torch.tensor(_XS, dtype=dtype, requires_grad=True)
    value = T.mmd(student, torch.tensor(_XS, dtype=dtype), **kw)
    value.backward()
    assert torch.isfinite(student.grad).all() and student.grad.abs().max() < 1e-12


_LOG_1E300 = 690.7755278982137  # e^{-690.7755...} = 1e-300


def _kd_extreme(name, t):
    if name == "issue":  # T = 0.01: gaps / T beyond 709 (the reference gave NaN there)
        return np.array([[0.0, 10.0], [3.0, -2.0]]), np.array([[1.0, 2.0], [0.0, 0.0]])
    if name == "far_apart":
        return np.array([[1e3, -1e3, 0.0], [-1e3, 0.0, 1e3]]), np.array([[-1e3, 1e3, 0.5], [-1e3, 1e3, 999.0]])
    if name == "one_side_saturated":
        return np.array([[0.0, 1e-3, -500.0]]), np.array([[100.0, 0.0, -500.0]])
    if name == "saturated_1e-300":  # 1 - 1e-300 on class 0 at this T on both sides; the tails differ
        u = np.array([[_LOG_1E300, 0.0, -0.5, -1.0]]) * t
        return u + np.array([[0.0, 0.0, 1e-3, -2e-3]]) * t, u
    base = np.random.default_rng(21).normal(size=(3, 5)) * 300
    if name == "shifted":
        return base + np.array([[3.0], [-700.0], [0.5]]), base
    return base + np.random.default_rng(22).normal(size=base.shape), base  # "ordinary"


@pytest.mark.parametrize("t", [1e-3, 1e-2, 1.0, 1e3, 1e6])
@pytest.mark.parametrize("direction", ["teacher_student", "student_teacher"])
@pytest.mark.parametrize("case", ["issue", "far_apart", "one_side_saturated", "saturated_1e-300", "shifted",
                                  "ordinary"])
def test_hinton_torch_float64_matches_oracle_at_extremes(case, direction, t):
    """covers("hinton_kd", "oracle"): torch in float64 at T = 1e-3 ... 1e6 (|u/T| up to 2e6, saturated
    softmaxes): within the float64 error model of the oracle, finite, and within 1e-12 relative of the
    reference wherever that model resolves 1e-12 (log_softmax cannot keep the relative accuracy of a KL
    that is small next to its error scale)."""
    us, ut = _kd_extreme(case, t)
    value = T.hinton_kd(_t(us), _t(ut), temperature=t, direction=direction)
    assert value.dtype == torch.float64 and torch.isfinite(value)
    value = float(value)
    exact = O.hinton_kd(us, ut, temperature=t, direction=direction)
    rtol, atol = hinton_kd_tolerance(Example((us, ut), {"temperature": t, "direction": direction}), torch.float64)
    with mp.workdps(50):
        assert abs(mp.mpf(value) - exact) <= rtol * abs(exact) + atol, (value, exact, atol)
    ref = R.hinton_kd(us, ut, temperature=t, direction=direction)
    if atol <= 1e-13 * ref:
        assert abs(value - ref) <= 1e-12 * ref, (value, ref)

