"""The step-cost benchmark: a row per torch key, fractions that are paired ratios term / step (a term
planted slower than the step lands above 1, a trivially cheap one below), and its table and figure."""

import math
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")
pytest.importorskip("pandas")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import figures, step_cost
from verification.plotting import WIDTH

STEP_S = 0.03  # the planted student step


def no_progress(items, desc=""):
    return items


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny(monkeypatch):
    """Batch size 8 and a time budget of about a second per batch size (so the minimum of 3 rounds)."""
    monkeypatch.setattr(step_cost, "BATCHES", (8,))
    monkeypatch.setitem(step_cost.SETTINGS, "quick", {"rounds": 3, "budget_s": 1.0})


class SleepyStudent(torch.nn.Module):
    """A student whose step takes STEP_S plus a small linear layer."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3 * 32 * 32, step_cost.N_CLASSES)

    def forward(self, x):
        time.sleep(STEP_S)
        return self.fc(x.flatten(1)), x.flatten(1)


@pytest.fixture(scope="module")
def real():
    """The real ResNet-18 step at B = 8, every torch key, memory measured in the child process."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(step_cost, "BATCHES", (8,))
        mp.setitem(step_cost.SETTINGS, "quick", {"rounds": 3, "budget_s": 1.0})
        return step_cost.run("cpu", True, no_progress)


def test_every_torch_key_gets_a_finite_fraction_inside_its_interval_or_an_error(real):
    rows = real["rows"]
    assert [r["metric"] for r in rows] == step_cost.torch_keys()
    for row in rows:
        assert row["batch"] == 8 and row["d"] == step_cost.D and row["device"] == "cpu"
        if "error" in row:
            assert isinstance(row["error"], str) and row["error"], row
            continue
        lo, hi = row["fraction_ci95"]
        assert math.isfinite(row["fraction"]) and row["fraction"] > 0, row
        assert lo <= row["fraction"] <= hi, row
        assert row["rounds"] >= 3 and row["step_s"] > 0 and row["term_s"] > 0, row
        assert row["step_peak_bytes"] > 0 and row["peak_bytes"] >= 0, row
        assert row["memory_fraction"] == pytest.approx(row["peak_bytes"] / row["step_peak_bytes"]), row
    by_key = {r["metric"]: r for r in rows}
    for key, extra in step_cost.PARAMS.items():  # the ridge makes the Gaussian KL computable at n < d
        assert "error" not in by_key[key], by_key[key]
        assert by_key[key]["params"].items() >= extra.items()


def test_figure_covers_every_key(real):
    assert set(figures.step_order(real["rows"])) == set(step_cost.torch_keys())
    fig = figures.plot_step_cost(real)
    assert fig.get_size_inches()[0] <= WIDTH
    assert fig.axes[0].get_xscale() == "log"
    assert len(fig.axes[0].get_yticklabels()) == len(step_cost.torch_keys())


def test_a_term_slower_than_the_step_lands_above_one_and_a_trivial_one_below(tiny, monkeypatch):
    real_loss = step_cost.KD2MLoss

    def planted(key, weight, **params):
        loss = real_loss(key, weight, **params)
        if key == "mmd":
            def slow(*args):
                time.sleep(3 * STEP_S)
                return loss(*args)
            return slow
        return lambda features_student, *rest: features_student.sum() * 0  # trivially cheap

    monkeypatch.setattr(step_cost, "student", SleepyStudent)
    monkeypatch.setattr(step_cost, "KD2MLoss", planted)
    rows = {r["metric"]: r for r in step_cost.run("cpu", True, no_progress, memory=False,
                                                  keys=("mmd", "wasserstein"))["rows"]}
    assert rows["mmd"]["fraction_ci95"][0] > 1, rows["mmd"]
    assert rows["mmd"]["fraction"] == pytest.approx(3, rel=0.3)
    assert rows["wasserstein"]["fraction_ci95"][1] < 1, rows["wasserstein"]


def test_the_fraction_is_paired_by_round(tiny, monkeypatch):
    """Load that varies by round cancels in per-round ratios: a term that always takes half the step
    of its round gets exactly 0.5 with a zero-width interval, which unpaired ratios would not give."""
    step = [1.0, 10.0, 2.0, 20.0, 3.0]

    def interleaved(calls, **_):
        return {"step": step, "mmd": [s / 2 for s in step]}, {"step": 1, "mmd": 1}

    monkeypatch.setattr(step_cost, "student", SleepyStudent)
    monkeypatch.setattr(step_cost.timing, "interleaved", interleaved)
    (row,) = step_cost.run("cpu", True, no_progress, memory=False, keys=("mmd",))["rows"]
    assert row["fraction"] == 0.5 and row["fraction_ci95"] == [0.5, 0.5] and row["rounds"] == 5
    assert row["step_s"] == 3.0 and row["term_s"] == 1.5
