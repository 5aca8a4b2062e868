"""KD2MLoss: trains with every key of the registry (one test per key, so keys added later are covered),
detaches the teacher, computes in float32 or better under autocast, and says what is missing."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kd2m_ref import METRICS  # noqa: E402
from kd2m_ref.torch import KD2MLoss  # noqa: E402
from kd2m_ref.torch.examples import DEMO_PARAMS, distill, synthetic_task  # noqa: E402

TORCH_KEYS = sorted(k for k, s in METRICS.items() if s.torch_path is not None)


pytestmark = pytest.mark.usefixtures("one_thread")


def _loss(key, weight=1.0, **kwargs):
    return KD2MLoss(key, weight=weight, **DEMO_PARAMS.get(key, {}), **kwargs)


@pytest.fixture(scope="module")
def task():
    return synthetic_task(seed=0)


@pytest.mark.parametrize("key", sorted(METRICS))
def test_distillation_trains_with_every_key(key, task):
    """The end-to-end example of the book: CE + lambda·D on a fixed teacher; the objective decreases, the
    metric decreases on held-out data, and the student's representation (features; logits for logit
    metrics) moves toward the teacher's in exact W2^2."""
    if METRICS[key].torch_path is None:
        pytest.skip(f"{key} has no torch implementation")
    if METRICS[key].layout == "feature_maps":
        pytest.skip(f"{key} compares (B, C, H, W) feature maps; the synthetic MLP has pooled features only")
    run = distill(key, task=task)
    assert np.isfinite(run.total_loss).all()
    assert np.mean(run.total_loss[-5:]) < 0.9 * np.mean(run.total_loss[:5]), run.total_loss
    assert run.distance_after < 0.75 * run.distance_before, (run.distance_before, run.distance_after)
    assert run.gap_after < 0.75 * run.gap_before, (run.gap_before, run.gap_after)


def _batch(seed=0, n=24, d=4, c=3, dtype=torch.float32, key=None):
    """Features (n, d), or for a feature-map key (4, 2, 3, d) maps of the same numbers; labels; logits."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % c
    fs, ft = torch.randn(n, d, generator=g, dtype=dtype), torch.randn(n, d, generator=g, dtype=dtype) + 0.5
    ls, lt = torch.randn(n, c, generator=g, dtype=dtype), torch.randn(n, c, generator=g, dtype=dtype)
    if key is not None and METRICS[key].layout == "feature_maps":
        fs, ft = fs.reshape(4, 2, 3, d), ft.reshape(4, 2, 3, d)
    return fs, ft, labels, ls, lt


def _args(key, fs, ft, labels, ls, lt):
    """The positional inputs of the metric's torch function, as KD2MLoss forms them."""
    spec = METRICS[key]
    kwargs = {"ys": labels} if "labels" in spec.needs else {}
    return ((ls, lt) if "logits" in spec.needs else (fs, ft)), kwargs


@pytest.mark.parametrize("key", TORCH_KEYS)
def test_forward_is_weight_times_metric_and_total_adds_cross_entropy(key):
    fs, ft, labels, ls, lt = _batch(dtype=torch.float64, key=key)
    loss = _loss(key, weight=0.3)
    args, kwargs = _args(key, fs, ft, labels, ls, lt)
    expected = METRICS[key].torch(*args, **kwargs, **DEMO_PARAMS.get(key, {}))
    value = loss(fs, ft, labels, ls, lt)
    assert value.dtype == torch.float64 and value.shape == ()
    assert torch.allclose(value, 0.3 * expected, rtol=1e-12, atol=0)
    terms = loss.total(ls, labels, fs, ft, lt, ce_weight=2.0)
    ce = torch.nn.functional.cross_entropy(ls, labels)
    assert torch.allclose(terms.cross_entropy, ce) and torch.allclose(terms.total, 2.0 * ce + terms.distillation)


@pytest.mark.parametrize("key", TORCH_KEYS)
def test_teacher_detached_by_default(key):
    fs, ft, labels, ls, lt = _batch(dtype=torch.float64, key=key)
    student_in = ls if "logits" in METRICS[key].needs else fs
    teacher_in = lt if "logits" in METRICS[key].needs else ft
    student_in.requires_grad_(True)
    teacher_in.requires_grad_(True)
    _loss(key)(fs, ft, labels, ls, lt).backward()
    assert student_in.grad is not None and teacher_in.grad is None
    _loss(key, detach_teacher=False)(fs, ft, labels, ls, lt).backward()
    assert teacher_in.grad is not None and torch.isfinite(teacher_in.grad).all()


@pytest.mark.parametrize("key", TORCH_KEYS)
def test_autocast_computes_in_float32(key):
    """Under CPU autocast a Linear layer outputs bfloat16; the distance is computed in float32 from those
    values (not in bfloat16), and equals the float32 computation outside autocast."""
    fs, ft, labels, ls, lt = _batch(key=key)
    layer = torch.nn.Linear(4, 4)
    loss = _loss(key)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hs, hl = layer(fs), layer(torch.cat([ls, ls[:, :1]], 1))[:, :3]
        assert hs.dtype == torch.bfloat16
        value = loss(hs, ft, labels, hl, lt)
    assert value.dtype == torch.float32
    args, kwargs = _args(key, hs.float(), ft, labels, hl.float(), lt)
    assert torch.allclose(value, METRICS[key].torch(*args, **kwargs, **DEMO_PARAMS.get(key, {})), rtol=1e-6, atol=1e-7)
    value.backward()
    assert torch.isfinite(layer.weight.grad).all()


def test_unknown_key_and_unknown_parameter():
    with pytest.raises(ValueError, match="unknown metric 'wasserstien'.*'wasserstein'"):
        KD2MLoss("wasserstien", weight=1.0)
    with pytest.raises(ValueError, match=r"does not take \['bandwith'\].*'bandwidth'"):
        KD2MLoss("mmd", weight=1.0, bandwith=2.0)


@pytest.mark.parametrize("key", sorted(k for k in TORCH_KEYS if "labels" in METRICS[k].needs))
def test_missing_labels_is_a_clear_error(key):
    fs, ft, *_ = _batch()
    with pytest.raises(ValueError, match=f"metric '{key}' needs labels"):
        KD2MLoss(key, weight=1.0)(fs, ft)


@pytest.mark.parametrize("key", sorted(k for k in TORCH_KEYS if "logits" in METRICS[k].needs))
def test_missing_logits_is_a_clear_error(key):
    fs, ft, labels, ls, _ = _batch()
    with pytest.raises(ValueError, match=f"metric '{key}' needs logits"):
        KD2MLoss(key, weight=1.0)(fs, ft, labels, logits_student=ls)


def test_missing_features_is_a_clear_error():
    with pytest.raises(ValueError, match="compares features"):
        KD2MLoss("mmd", weight=1.0)(None, None)


@pytest.mark.parametrize("weight", [-1.0, float("nan"), "1"])
def test_bad_weight_is_refused_at_construction(weight):
    with pytest.raises(ValueError, match="weight .* must be a finite non-negative number"):
        KD2MLoss("mmd", weight=weight)


@pytest.mark.parametrize("key, params, message", [
    ("mmd", {"kernel": "rbf"}, "kernel must be one of"),
    ("sinkhorn_divergence", {"epsilon": -1.0}, "epsilon must be a finite positive"),
    ("hinton_kd", {"temperature": 0}, "temperature must be a finite positive"),
    ("sliced_wasserstein", {"seed": -1}, "seed must be a non-negative integer"),
])
def test_metric_parameters_checked_at_construction(key, params, message):
    """A bad metric parameter fails when the loss is built, not at the first training step."""
    with pytest.raises(ValueError, match=message):
        KD2MLoss(key, weight=1.0, **params)


def test_total_without_labels_is_a_clear_error():
    fs, ft, labels, ls, lt = _batch()
    with pytest.raises(ValueError, match="total\\(\\) needs labels"):
        KD2MLoss("mmd", weight=1.0).total(ls, None, fs, ft)
