"""``kd2m-ref verify synthetic``: the smoke profile passes and is reproducible, planted errors (a wrong closed
form, a reversed verdict rule) make it exit 1, the confidence intervals cover at their level, and B3 trains
on CE + lambda * D."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from kd2m_ref.cli import main
from verification import stats
from verification.synthetic import experiment
from verification.synthetic.claims import CLAIMS, POSITIVE_MIN, failures
from verification.synthetic.plots import FIGURES

ALPHA = 0.05


def _smoke(out) -> int:
    return main(["verify", "synthetic", "--profile", "smoke", "--seed", "0", "--out", str(out)])


def _load(path):
    data = json.loads(path.read_text())
    return data, data.pop("provenance")


def test_verify_synthetic_smoke_passes_and_is_reproducible(tmp_path):
    for sub in ("a", "b"):
        assert _smoke(tmp_path / sub) == 0
    (a, prov), (b, _) = _load(tmp_path / "a" / "synthetic.json"), _load(tmp_path / "b" / "synthetic.json")
    assert a == b
    assert prov["profile"] == "smoke" and prov["seed"] == 0
    for name in FIGURES:
        assert (tmp_path / "a" / f"{name}.png").stat().st_size > 0
    cfg = experiment.PROFILES["smoke"]
    fam = a["family"]
    assert fam["method"] == "Bonferroni" and fam["m"] == experiment.family_size(cfg)
    assert math.isclose(fam["alpha_per_interval"], ALPHA / fam["m"], rel_tol=1e-9)
    assert len(a["b1"]["instances"]) == cfg["b1"]["instances"] and len(a["b2"]["instances"]) == cfg["b2"]["instances"]
    assert set(a["claims"]) == set(CLAIMS) and a["failures"]["total"] == 0
    for name, c in a["claims"].items():
        assert c["holds"] + c["inconclusive"] + c["violated"] == c["n"], name
        if c["kind"] == "exact":
            assert c["holds"] == c["n"] > 0, name
    for key, run in a["b3"]["runs"].items():  # CE + lambda * D, lambda calibrated and recorded
        assert run["lambda"] > 0, key
        train = run["train"]
        np.testing.assert_allclose(train["total"], np.add(train["cross_entropy"], train["distillation"]), rtol=1e-5)
        assert all(c > 0 for c in train["cross_entropy"])
        assert run["checks"]["gap_le_L_cond_violations"] == 0 and run["checks"]["cond_le_coupling_violations"] == 0


def test_verify_synthetic_exits_1_on_a_violation(tmp_path, monkeypatch):
    real = experiment.gaussian_mmd
    monkeypatch.setattr(experiment, "gaussian_mmd", lambda *args: 0.5 * real(*args))
    assert _smoke(tmp_path) == 1
    data, _ = _load(tmp_path / "synthetic.json")
    assert data["failures"]["exact"] > 0


def _reversed_verdict(gap_upper, gap_lower, bound_lower, bound_upper):
    if gap_upper >= bound_lower:  # the "holds" inequality reversed
        return "holds"
    if gap_lower > bound_upper:
        return "violated"
    return "inconclusive"


def test_swapped_verdict_rule_is_caught(tmp_path):
    original = stats.verdict
    patched = []
    for module in list(sys.modules.values()):
        for name, value in list(vars(module).items()) if hasattr(module, "__dict__") else ():
            if value is original:
                setattr(module, name, _reversed_verdict)
                patched.append((module, name))
    try:
        assert (stats, "verdict") in patched
        assert _smoke(tmp_path) == 1
    finally:
        for module, name in patched:
            setattr(module, name, original)
    data, _ = _load(tmp_path / "synthetic.json")
    assert data["failures"]["exact"] > 0 and data["failures"]["negative_controls"] > 0


def _coverage(interval, p: float, n: int = 20, reps: int = 2000, seed: int = 7) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        iv = interval(rng.binomial(1, p, n).astype(float))
        hits += iv.lower <= p <= iv.upper
    return hits / reps


def test_interval_coverage_is_at_least_the_level():
    for p in (0.5, 0.1):
        assert _coverage(lambda x: stats.mean_interval(x, 1.0, ALPHA), p) >= 1 - ALPHA
        assert _coverage(lambda x: stats.hoeffding(x, 1.0, ALPHA), p) >= 1 - ALPHA
        assert _coverage(lambda x: stats.empirical_bernstein(x, 1.0, ALPHA), p) >= 1 - ALPHA
    # the check has power: alpha and 1 - alpha mixed up gives intervals that cover less than 1 - alpha
    assert _coverage(lambda x: stats.mean_interval(x, 1.0, 1 - ALPHA), 0.5) < 1 - ALPHA
    assert _coverage(lambda x: stats.hoeffding(x, 1.0, 1 - ALPHA), 0.5) < 1 - ALPHA


def test_bonferroni_and_degenerate_intervals_in_the_verdict_rule():
    assert stats.bonferroni(0.05, 20) == 0.0025
    with pytest.raises(ValueError, match="at least one statement; got m=0"):
        stats.bonferroni(0.05, 0)
    point = stats.Interval.point
    assert stats.compare(point(-0.3), point(0.4)) == "holds"
    assert stats.compare(point(0.5), point(0.4)) == "violated"
    assert stats.compare(stats.Interval(0.1, -0.1, 0.3), point(0.2)) == "inconclusive"
    assert stats.compare(point(0.3), stats.Interval(0.2, 0.1, 0.4), scale=3.0) == "holds"
    assert stats.compare(point(0.3), stats.Interval(1.0, math.nan, 0.2)) == "violated"  # a missing LCB is -inf


def test_failures_count_every_kind():
    def claim(kind, n, holds, violated):
        return {"kind": kind, "n": n, "holds": holds, "violated": violated, "inconclusive": n - holds - violated}

    ok = {"e": claim("exact", 5, 5, 0), "p": claim("population", 5, 1, 0), "+": claim("positive", 10, 9, 0),
          "-": claim("negative", 4, 0, 4), "d": claim("data", 3, 0, 3)}
    assert failures(ok, 0)["total"] == 0
    assert POSITIVE_MIN == 0.9
    bad = {"e": claim("exact", 5, 4, 0), "p": claim("population", 5, 1, 2), "+": claim("positive", 10, 8, 0),
           "-": claim("negative", 4, 1, 3), "d": claim("data", 3, 0, 3)}
    assert failures(bad, 3) == {"exact": 1, "population": 2, "positive_controls": 1, "negative_controls": 1,
                                "b3": 3, "total": 8}


def test_b3_objective_is_cross_entropy_plus_lambda_times_the_distance():
    import torch

    from kd2m_ref.torch import KD2MLoss
    from kd2m_ref.torch.examples import MLP, synthetic_task
    from verification.synthetic.training import calibrated_weight, objective

    task = synthetic_task(n_train=96, n_test=30, seed=0)
    torch.manual_seed(0)
    student = MLP(task.x_train.shape[1], [16], task.d_feature, task.n_classes)
    batches = [(task.x_train[i::2], task.y_train[i::2]) for i in range(2)]
    cal = calibrated_weight("mmd", {}, student, task.teacher, batches)
    probe = KD2MLoss("mmd", weight=1.0)
    with torch.no_grad():
        ce = [float(torch.nn.functional.cross_entropy(student(x)[0], y)) for x, y in batches]
        d = [float(probe.distance(student(x)[1], task.teacher(x)[1], y)) for x, y in batches]
    assert cal["lambda"] > 0
    assert math.isclose(cal["lambda"], np.mean(ce) / np.mean(d), rel_tol=1e-6)
    loss = KD2MLoss("mmd", weight=cal["lambda"])
    x, y = batches[0]
    terms = objective(loss, student, task.teacher, x, y)
    expected = ce[0] + cal["lambda"] * d[0]
    assert math.isclose(float(terms.total.detach()), expected, rel_tol=1e-5)
    assert math.isclose(float(terms.cross_entropy.detach()), ce[0], rel_tol=1e-6)
    terms.total.backward()  # the objective trains the student's head too: CE reaches it, D alone does not
    assert student.head.weight.grad is not None and float(student.head.weight.grad.abs().sum()) > 0
