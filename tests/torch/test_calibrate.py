"""``calibrate_weight``: lambda = rho * mean CE / mean D, the one implementation behind the three callers
(the package's example, the synthetic experiment B3, the ResNet experiment), its bad-input errors, and
planted errors (wrong versions of the rule) that the checks below must catch."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kd2m_ref.torch import KD2MLoss, calibrate_weight  # noqa: E402

# ------------------------------------------------------------------ checks of the rule, on any implementation


def check_ratio_of_means(fn):
    """A ratio of the means, not a mean of the per-batch ratios: (1 + 3) / (1 + 1) = 2, not (1 + 3) / 2."""
    assert math.isclose(fn([1.0, 3.0], [1.0, 1.0], rho=1.0), 2.0)
    assert math.isclose(fn([1.0, 1.0], [1.0, 3.0], rho=1.0), 0.5)  # mean of ratios: (1 + 1/3) / 2


def check_rho_is_a_factor(fn):
    assert math.isclose(fn([2.0], [8.0], rho=3.0), 3.0 * 2.0 / 8.0)


def check_orientation(fn):
    """CE over D: the distillation term lambda * D0 starts at rho * CE0."""
    ce, d, rho = [2.3, 2.1, 2.2], [40.0, 55.0, 47.5], 0.3
    lam = fn(ce, d, rho=rho)
    assert math.isclose(lam * np.mean(d), rho * np.mean(ce), rel_tol=1e-12)


def check_default_rho_is_one(fn):
    assert math.isclose(fn([2.0, 4.0], [1.0, 2.0]), 2.0)


def check_scale_free(fn):
    """Scaling every distance by s scales lambda by 1/s: lambda * D0 does not depend on the units of D."""
    ce, d = [1.1, 0.9], [3e-4, 5e-4]
    assert math.isclose(fn(ce, [1e6 * x for x in d]) * 1e6, fn(ce, d), rel_tol=1e-12)


CHECKS = [check_ratio_of_means, check_rho_is_a_factor, check_orientation, check_default_rho_is_one,
          check_scale_free]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_rule(check):
    check(calibrate_weight)


# Planted errors: each is a plausible wrong rule; at least one check above must fail on it.
PLANTED = {
    "mean of ratios": lambda ce, d, rho=1.0: rho * float(np.mean(np.divide(ce, d))),
    "inverted ratio": lambda ce, d, rho=1.0: rho * float(np.mean(d)) / float(np.mean(ce)),
    "rho ignored": lambda ce, d, rho=1.0: float(np.mean(ce)) / float(np.mean(d)),
    "rho divides": lambda ce, d, rho=1.0: float(np.mean(ce)) / float(np.mean(d)) / rho,
    "first batch only": lambda ce, d, rho=1.0: rho * ce[0] / d[0],
    "sums, not means, of CE": lambda ce, d, rho=1.0: rho * float(np.sum(ce)) / float(np.mean(d)),
    "default rho 0.5": lambda ce, d, rho=0.5: rho * float(np.mean(ce)) / float(np.mean(d)),
}


@pytest.mark.parametrize("name", list(PLANTED))
def test_planted_error_is_caught(name):
    failed = []
    for check in CHECKS:
        try:
            check(PLANTED[name])
        except AssertionError:
            failed.append(check.__name__)
    assert failed, f"planted error {name!r} passes every check of the rule"


# ------------------------------------------------------------------------------------------- inputs


def test_accepts_floats_zero_d_tensors_one_d_tensors_and_arrays():
    expected = 1.5 * (2.0 + 4.0) / (1.0 + 5.0)
    for ce, d in [([2.0, 4.0], [1.0, 5.0]), ((2.0, 4.0), (1.0, 5.0)),
                  ([torch.tensor(2.0), torch.tensor(4.0)], [torch.tensor(1.0), torch.tensor(5.0)]),
                  (torch.tensor([2.0, 4.0]), torch.tensor([1.0, 5.0])), (np.array([2.0, 4.0]), np.array([1.0, 5.0])),
                  ([np.float32(2.0), 4], [1, np.float64(5.0)])]:
        value = calibrate_weight(ce, d, rho=1.5)
        assert type(value) is float and math.isclose(value, expected, rel_tol=1e-7), (ce, d, value)


def test_one_batch_as_scalars_and_tensors_with_grad():
    fs = torch.randn(6, 3, requires_grad=True)
    d = (fs ** 2).mean()  # a 0-d tensor attached to the graph: read, not differentiated
    assert math.isclose(calibrate_weight(torch.tensor(2.0), d), 2.0 / float(d.detach()), rel_tol=1e-6)
    assert calibrate_weight(3.0, 1.5, rho=2.0) == 4.0


def test_float64_means_like_numpy():
    """The value is rho * np.mean(ce) / np.mean(d) in float64, bit for bit (what B3 and the ResNet
    experiment computed before the helper existed, so their results are unchanged)."""
    rng = np.random.default_rng(0)
    ce, d = rng.uniform(0.5, 3, size=7).tolist(), rng.uniform(1e-3, 1e3, size=7).tolist()
    assert calibrate_weight(ce, d, rho=0.3) == 0.3 * float(np.mean(ce)) / float(np.mean(d))


NAN, INF = float("nan"), float("inf")
BAD = [  # (cross_entropies, distances, other keywords, the error's message)
    ([1.0, 2.0], [1.0], {}, "cross_entropies and distances must have one value per"),
    ([], [], {}, "cross_entropies is empty"),
    ([1.0], [], {}, "distances is empty"),
    ([1.0, NAN], [1.0, 1.0], {}, r"cross_entropies\[1\] is nan"),
    ([1.0], [INF], {}, r"distances\[0\] is inf"),
    ([1.0], [torch.tensor(NAN)], {}, r"distances\[0\] is nan"),
    ([-0.1], [1.0], {}, r"cross_entropies\[0\] = -0.1 is negative"),
    ([1.0, 1.0], [1.0, -2e-3], {}, r"distances\[1\] = -0.002 is negative.*unbiased"),
    ([1.0, 1.0], [0.0, 0.0], {}, "distances are all 0 over the 2 calibration"),
    ([1.0], [torch.ones(3)], {}, r"distances\[0\] must be a number or a 0-d tensor"),
    (torch.ones(2, 2), [1.0], {}, "cross_entropies must be a number or a 1-d"),
    (["1.0"], [1.0], {}, r"cross_entropies\[0\] must be a real number"),
    ([1.0], [1.0], {"rho": 0.0}, "rho must be a finite positive number"),
    ([1.0], [1.0], {"rho": NAN}, "rho must be a finite positive number"),
    ([1.0], [0.0], {"zero_distance": "ignore"}, "zero_distance must be 'raise' or"),
    ([1.0], [0.0], {"zero_distance": -1.0}, "zero_distance must be a finite non-neg"),
]


@pytest.mark.parametrize("ce,d,kwargs,message", BAD, ids=[m[:40] for *_, m in BAD])
def test_bad_input_names_the_argument(ce, d, kwargs, message):
    with pytest.raises(ValueError, match=message):
        calibrate_weight(ce, d, **kwargs)


def test_zero_distance_fallback_is_explicit():
    assert calibrate_weight([1.0, 2.0], [0.0, 0.0], zero_distance=0.0) == 0.0  # ResNet experiment: CE only
    assert calibrate_weight([1.0], [0.0], rho=10.0, zero_distance=1.0) == 1.0  # package example: weight 1
    assert calibrate_weight([1.0, 1.0], [0.0, 2.0], zero_distance=1.0) == 1.0  # a zero batch among others: the rule


# ------------------------------------------------------------------------------------ the three callers


def test_example_distill_uses_the_rule():
    """``distill(weight=None)``: lambda = balance * CE0 / D0 on the first batch."""
    from kd2m_ref.torch.examples import MLP, distill, stratified_batches, synthetic_task

    task = synthetic_task(n_train=96, n_test=30, seed=0)
    run = distill("mmd", steps=1, batch_size=24, balance=4.0, task=task)
    torch.manual_seed(1)  # distill's student and first batch, rebuilt
    student = MLP(task.x_train.shape[1], [16], task.d_feature, task.n_classes)
    idx = next(stratified_batches(task.y_train, 24, 1, torch.Generator().manual_seed(2)))
    with torch.no_grad():
        ls, fs = student(task.x_train[idx])
        ft = task.teacher(task.x_train[idx])[1]
        ce0 = float(torch.nn.functional.cross_entropy(ls, task.y_train[idx]))
        d0 = float(KD2MLoss("mmd", weight=1.0).distance(fs, ft))
    assert math.isclose(run.weight, 4.0 * ce0 / d0, rel_tol=1e-6)


def test_b3_raises_on_zero_distance_naming_the_key(monkeypatch):
    from kd2m_ref.torch.examples import MLP, synthetic_task
    from verification.synthetic.training import calibrated_weight

    task = synthetic_task(n_train=96, n_test=30, seed=0)
    student = MLP(task.x_train.shape[1], [16], task.d_feature, task.n_classes)
    monkeypatch.setattr(KD2MLoss, "distance", lambda self, *a, **k: torch.tensor(0.0))
    with pytest.raises(ValueError, match="^mmd: distances are all 0"):
        calibrated_weight("mmd", {}, student, task.teacher, [(task.x_train[:24], task.y_train[:24])])
