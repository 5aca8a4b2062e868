"""The benchmark suite compares like with like: every peer and naive baseline, once its convention is
bridged in ``benchmarks/impls.py``, computes our quantity; and the target arithmetic is right."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("geomloss")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.impls import METRICS, features, implementations, reference_value  # noqa: E402
from benchmarks import timing  # noqa: E402
from benchmarks.run import equal_accuracy, targets  # noqa: E402

# Relative tolerance per (metric, implementation) where the peer's algorithm is itself approximate:
# GeomLoss anneals epsilon (its error is ~6e-3 at scaling 0.5 and ~2e-3 at 0.9 on these inputs), the
# naive Sinkhorn runs a fixed number of iterations, POT adds a 1e-6 ridge to both covariances. A wrong
# convention is off by far more (POT's linear-cost divergence differs by 17 % here; a halved cost, 2x).
APPROXIMATE = {("sinkhorn_divergence", "geomloss"): 2e-2, ("sinkhorn_divergence", "geomloss_0.9"): 2e-2,
               ("sinkhorn_divergence", "naive"): 1e-6, ("sinkhorn_divergence", "ours_tol_1e-3"): 1e-3,
               ("gaussian_wasserstein", "pot"): 1e-4}


@pytest.mark.parametrize("metric", METRICS)
def test_every_implementation_computes_our_quantity(metric):
    xs, xt = features(48, 6, torch.float64, "cpu", seed=3)
    truth = reference_value(metric, xs, xt)
    for impl in implementations(metric):
        if not impl.same_quantity:
            continue
        value = float(impl.fn(xs, xt))
        assert value == pytest.approx(truth, rel=APPROXIMATE.get((metric, impl.name), 1e-9)), (metric, impl.name)


def test_equal_accuracy_takes_the_fastest_of_our_settings_that_is_no_less_accurate():
    case = {"metric": "sinkhorn_divergence", "n": 64, "d": 8, "dtype": "float32"}
    rows = [case | {"implementation": "ours", "median_s": 4.0, "times_s": [4.0] * 5, "rel_error": 1e-8},
            case | {"implementation": "ours_tol_1e-3", "median_s": 1.0, "times_s": [1.0] * 5, "rel_error": 1e-2},
            case | {"implementation": "geomloss", "median_s": 2.0, "times_s": [2.0] * 5, "rel_error": 1e-3}]
    assert [c["ratio"] for c in equal_accuracy(rows)] == [0.5]  # the less accurate setting is not eligible
    rows[1]["rel_error"] = 1e-4
    assert [c["ratio"] for c in equal_accuracy(rows)] == [2.0]
    rows[0]["rel_error"] = rows[1]["rel_error"] = 1e-1  # none of ours as accurate: no interval, missed
    (entry,) = equal_accuracy(rows)
    assert entry["interval"] is None
    assert targets(rows)[4]["verdict"] == "missed"


def test_verdicts_need_the_whole_interval_on_one_side():
    assert timing.verdict([1.01, 1.3], 1.0) == "met"
    assert timing.verdict([0.7, 0.99], 1.0) == "missed"
    assert timing.verdict([0.9, 1.1], 1.0) == "unresolved"
    assert timing.combine(["met", "unresolved", "met"]) == "unresolved"
    assert timing.combine(["met", "unresolved", "missed"]) == "missed"
    assert timing.combine(["met", "met"]) == "met" and timing.combine([]) == "unresolved"


def test_ratios_are_paired_per_round():
    """Load that changes 20-fold between rounds but hits both alike leaves the paired ratio exact; the
    ratio of unpaired medians would not be."""
    ours = [1.0, 20.0, 2.0, 10.0, 3.0, 15.0, 1.5]
    peer = [2 * t for t in ours]
    assert timing.ratio_interval(peer, ours) == {"ratio": 2.0, "ratio_ci95": [2.0, 2.0], "rounds": 7}
    assert timing.ratio_interval(sorted(peer), ours)["ratio_ci95"] != [2.0, 2.0]


def _sleeper(seconds):
    def fn(xs, xt):
        time.sleep(seconds)
        return (xs * 0).sum() + 1.0
    return fn


@pytest.mark.parametrize("ours_s, naive_s, expected", [(0.004, 0.001, "missed"), (0.001, 0.004, "met")])
def test_a_planted_slow_implementation_gets_its_verdict(monkeypatch, ours_s, naive_s, expected):
    """Time a fake metric whose 'ours' sleeps longer (or shorter) than its naive baseline: the naive
    target must say missed (or met), whatever the machine load, through the real timing path."""
    from benchmarks import impls, speed

    monkeypatch.setattr(speed, "implementations", lambda metric, eps: [
        impls.Impl("ours", "kd2m_ref", _sleeper(ours_s)), impls.Impl("naive", "torch", _sleeper(naive_s))])
    monkeypatch.setattr(speed, "reference_value", lambda *a: 1.0)
    rows = speed.time_case(speed.Case("mmd", 8, 2), "cpu", rounds=8, budget_s=0.2, block_s=0.01)
    (naive_target,) = [t for t in targets(rows) if t["target"].startswith("nothing slower")]
    assert naive_target["verdict"] == expected, naive_target
    assert all(r["load_before"] >= 0 and r["load_after"] >= 0 for r in rows)


def test_exact_ot_memory_target_reads_peak_over_the_cost_matrix():
    memory = {"rows": [{"metric": "wasserstein", "implementation": "ours", "n": 2048, "d": 64,
                        "cost_matrix_bytes": 100, "peak_bytes": 150},
                       {"metric": "wasserstein", "implementation": "pot", "n": 2048, "d": 64,
                        "cost_matrix_bytes": 100, "peak_bytes": 900}]}
    (target,) = [t for t in targets([], memory) if "memory" in t["target"]]
    assert target["verdict"] == "met" and target["cases"] == 1  # POT's peak is shown, not judged
    memory["rows"][0]["peak_bytes"] = 250
    (target,) = [t for t in targets([], memory) if "memory" in t["target"]]
    assert target["verdict"] == "missed"


def test_agree_flags_a_target_met_in_one_run_and_missed_in_the_other(tmp_path, capsys):
    from benchmarks import agree

    run = {"targets": [{"target": "a", "verdict": "met"}, {"target": "b", "verdict": "unresolved"}]}
    other = {"targets": [{"target": "a", "verdict": "met"}, {"target": "b", "verdict": "missed"}]}
    assert agree.conflicts(run, other) == []  # unresolved -> missed is what intervals are for
    other["targets"][0]["verdict"] = "missed"
    assert agree.conflicts(run, other) == ["a"]
    for name, res in (("one.json", run), ("two.json", other)):
        (tmp_path / name).write_text(json.dumps(res))
    assert agree.main([str(tmp_path / "one.json"), str(tmp_path / "two.json")]) == 1


def test_bench_command_rejects_an_unknown_part():
    out = subprocess.run([sys.executable, "-m", "kd2m_ref.cli", "bench", "--parts", "speed,bogus"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and "--parts: unknown ['bogus']" in out.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")
def test_bench_command_says_when_no_cuda_device_is_visible():
    out = subprocess.run([sys.executable, "-m", "kd2m_ref.cli", "bench", "--device", "cuda"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and "--device cuda: no CUDA device is visible" in out.stderr


def test_precision_floor_constants_match_their_measurement():
    """The committed measurement (benchmarks/precision_floor.py) was taken with the current constants,
    found no false alarm, and every key's largest gallery error is below 1/MARGIN of the floor."""
    import json

    from kd2m_ref.testing.precision import CONSTANTS, MARGIN

    result = json.loads((ROOT / "benchmarks" / "results" / "precision_floor.json").read_text())
    assert result["false_alarms"] == 0 and result["margin"] == MARGIN
    assert set(result["per_key"]) == set(CONSTANTS)
    for key, row in result["per_key"].items():
        assert tuple(row["constants"]) == CONSTANTS[key], f"{key}: constants changed since the measurement"
        assert max(row["float64"], row["float32"]) <= 1 / MARGIN, key
