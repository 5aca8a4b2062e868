"""What the ResNet experiment concludes, on hand-made run records: the teacher gate, rho selection on
validation data and its must-hold check, paired comparisons with Holm's correction, rank
correlations, the split check, and the paper's Table 1 as transcribed."""

from __future__ import annotations

import numpy as np
import pytest

from verification.resnet import analysis
from verification.resnet.analysis import PAPER, compare, select_rho, selection_check, teacher_gate

RHOS = (0.1, 1.0, 10.0)


def _run(phase, metric, rho, seed, val, test, own=None):
    return {"phase": phase, "metric": metric, "arm": "baseline" if metric is None else f"{metric}_rho{rho:g}",
            "rho": rho, "seed": seed, "val_accuracy": val, "test_accuracy": test, "own_distance": own}


def _grid():
    """Loss ``a``: validation best at rho = 1, test best at rho = 10. Loss ``b``: a tie between 0.1 and 10."""
    runs = []
    for s in (100, 101):
        for rho, val, test in ((0.1, 0.80, 0.80), (1.0, 0.90, 0.70), (10.0, 0.85, 0.95)):
            runs.append(_run("selection", "a", rho, s, val, test))
        for rho, val in ((0.1, 0.9), (1.0, 0.5), (10.0, 0.9)):
            runs.append(_run("selection", "b", rho, s, val, 0.5))
    return runs


def test_selection_reads_validation_and_breaks_ties_towards_the_smaller_rho():
    sel = select_rho(_grid(), ["a", "b"], RHOS)
    assert sel["a"]["rho"] == 1.0 and sel["b"]["rho"] == 0.1
    assert sel["a"]["val_mean"] == {"0.1": pytest.approx(0.8), "1": pytest.approx(0.9), "10": pytest.approx(0.85)}
    assert selection_check(sel, _grid(), RHOS)["holds"]


def test_a_selection_on_test_accuracy_fails_the_check():
    """Planted error: the grid scored on test accuracy. The check recomputes from validation and flags it."""
    swapped = [{**r, "val_accuracy": r["test_accuracy"]} for r in _grid()]
    planted = select_rho(swapped, ["a"], RHOS)
    assert planted["a"]["rho"] == 10.0
    check = selection_check(planted, _grid(), RHOS)
    assert not check["holds"] and check["problems"][0].startswith("a: selected rho 10")
    # a tie broken towards the larger rho is flagged too
    assert not selection_check({"b": {"rho": 10.0}}, _grid(), RHOS)["holds"]


def test_gate():
    assert teacher_gate(0.95, [0.90, 0.92], 0.02) == {"teacher_val": 0.95, "baseline_val_mean": pytest.approx(0.91),
                                                     "gap": pytest.approx(0.04), "margin": 0.02, "applied": True,
                                                     "holds": True}
    assert teacher_gate(0.92, [0.90, 0.92], 0.02)["holds"] is False
    assert teacher_gate(0.50, [0.90], None)["holds"] is None


def _evaluation(deltas_by_loss, seeds=range(8)):
    rng = np.random.default_rng(0)
    base = {s: 0.8 + 0.04 * rng.standard_normal() for s in seeds}  # a seed effect shared by every arm
    runs = [_run("evaluation", None, 0.0, s, 0.9, base[s]) for s in seeds]
    for m, (shift, noise) in deltas_by_loss.items():
        runs += [_run("evaluation", m, 1.0, s, 0.9, base[s] + shift + noise * rng.standard_normal()) for s in seeds]
    return runs


def test_compare_gives_helps_hurts_and_indistinguishable_with_holm():
    """Differences of 2 points, consistent across seeds, under a seed-to-seed spread of 4 points: only
    a test paired by seed sees them."""
    runs = _evaluation({"up": (0.02, 0.002), "down": (-0.02, 0.002), "flat": (0.0, 0.01)})
    sel = {m: {"rho": 1.0} for m in ("up", "down", "flat")}
    out = compare(runs, ["up", "down", "flat"], sel)
    verdict = {r["arm"]: r["verdict"] for r in out["differences"]}
    assert verdict == {"up": "helps", "down": "hurts", "flat": "indistinguishable"}
    for r in out["differences"]:
        assert r["p_holm"] >= r["difference"]["p"]
        assert r["difference"]["low"] <= r["difference"]["mean"] <= r["difference"]["high"]
    assert out["accuracy"]["up"]["lower"] < out["accuracy"]["up"]["estimate"] < out["accuracy"]["up"]["upper"]


def test_holm_turns_a_lone_marginal_difference_into_indistinguishable():
    """One loss with paired p just under 0.05 among six null ones: unadjusted it would 'help'; Holm says no."""
    seeds = range(5)
    runs = [_run("evaluation", None, 0.0, s, 0.9, 0.9) for s in seeds]
    for s, d in zip(seeds, (0.01, 0.02, 0.0, 0.015, 0.005)):
        runs.append(_run("evaluation", "edge", 1.0, s, 0.9, 0.9 + d))
    nulls = [f"null{i}" for i in range(6)]
    for m in nulls:
        runs += [_run("evaluation", m, 1.0, s, 0.9, 0.9 + d) for s, d in zip(seeds, (0.01, -0.01, 0.0, 0.02, -0.02))]
    out = compare(runs, ["edge"] + nulls, {m: {"rho": 1.0} for m in ["edge"] + nulls})
    edge = out["differences"][0]
    assert 0.01 < edge["difference"]["p"] < 0.05
    assert edge["verdict"] == "indistinguishable" and edge["p_holm"] == pytest.approx(7 * edge["difference"]["p"])
    alone = compare(runs, ["edge"], {"edge": {"rho": 1.0}})["differences"][0]
    assert alone["verdict"] == "helps"


def test_correlations_pick_up_a_monotone_relation():
    runs = [_run("selection", "a", 1.0, s, 0.9, 0.95 - 0.01 * s, own=float(s)) for s in range(10)]
    rows = [{"arm": r["arm"], "test_error": 1 - r["test_accuracy"], "w1_marginal": float(s), "coupling_mean": -s,
             "w1_conditional": None} for s, r in enumerate(runs)]
    out = analysis.correlations(runs, rows, ["a"])
    assert out["own_distance"]["a"]["rho"] == pytest.approx(1.0)
    assert out["bound_terms"]["w1_marginal"]["rho"] == pytest.approx(1.0)
    assert out["bound_terms"]["coupling_mean"]["rho"] == pytest.approx(-1.0)
    assert "w1_conditional" not in out["bound_terms"]


def test_paper_table_matches_its_average_column():
    """The transcription of Table 1: each row's Avg. equals the mean of its three datasets to the
    table's precision (0.01; the paper prints 80.55 for a mean of 80.557 in the (E) 3rd row), and a
    digit slipped by 0.1 in any cell is caught."""
    assert PAPER["columns"] == ["svhn", "cifar10", "cifar100", "avg"]

    def consistent(values):
        return abs(np.mean(values[:3]) - values[3]) <= 0.01

    for row in PAPER["rows"]:
        assert consistent(row["values"]), row["paper_row"]
        for i in range(3):
            slipped = list(row["values"])
            slipped[i] += 0.1
            assert not consistent(slipped), (row["paper_row"], i)
    from verification.resnet.train import LOSSES

    assert [r["arm"] for r in PAPER["rows"][2:]] == list(LOSSES)[:6]


def test_split_check_flags_overlap():
    from verification.resnet.experiment import _disjoint_check

    ok = {"validation": np.arange(0, 10), "teacher": np.arange(10, 50), "student": np.arange(10, 20)}
    assert _disjoint_check(ok)["holds"]
    leak = {**ok, "student": np.arange(5, 20)}
    check = _disjoint_check(leak)
    assert not check["holds"] and "validation images in the students' training set" in check["problems"][0]
