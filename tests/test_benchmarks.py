"""The benchmark suite compares like with like: every peer and naive baseline, once its convention is
bridged in ``benchmarks/impls.py``, computes our quantity; and the target arithmetic is right."""

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("geomloss")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.impls import METRICS, features, implementations, reference_value  # noqa: E402
from benchmarks.run import equal_accuracy  # noqa: E402

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
    rows = [case | {"implementation": "ours", "median_s": 4.0, "rel_error": 1e-8},
            case | {"implementation": "ours_tol_1e-3", "median_s": 1.0, "rel_error": 1e-2},  # less accurate
            case | {"implementation": "geomloss", "median_s": 2.0, "rel_error": 1e-3}]
    assert equal_accuracy(rows) == [0.5]
    rows[1]["rel_error"] = 1e-4
    assert equal_accuracy(rows) == [2.0]


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
