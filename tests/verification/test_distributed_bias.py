"""``kd2m-ref verify distributed_bias`` (smoke profile): the local-batch estimate equals the global one at
W = 1 and for the per-sample-mean control, and grows with the number of processes for the batch-level
metrics; the JSON carries its provenance and the figure is written."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from verification import distributed_bias  # noqa: E402


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("distributed_bias")
    distributed_bias.run("smoke", seed=0, out=out, command="test")
    return out, json.loads((out / "distributed_bias.json").read_text())


def test_local_estimate_is_biased_upward_with_more_processes(smoke):
    _, payload = smoke
    assert payload["setup"]["processes"][0] == 1
    for key in ("gaussian_wasserstein", "class_conditional_wasserstein"):
        r = payload["metrics"][key]
        assert r["local_mean"][0] == r["global_mean"]
        assert np.all(np.diff(r["local_mean"]) > 0), r["local_mean"]
        assert r["relative_bias"][-1] > 0.3, r["relative_bias"]
        assert r["global_mean"] > r["population"] > 0  # finite-batch estimators of W2^2 are biased upward
    control = payload["metrics"]["hinton_kd"]
    assert control["max_abs_local_minus_global"] < 1e-12  # a mean of per-sample terms: no bias with even shards


def test_results_have_provenance_and_a_figure(smoke):
    out, payload = smoke
    prov = payload["provenance"]
    assert prov["command"] == "test" and prov["profile"] == "smoke" and prov["seed"] == 0
    assert prov["libraries"]["torch"] and prov["wall_time_s"] >= 0
    assert (out / "distributed_bias.png").stat().st_size > 1000


def test_verify_exits_1_when_the_control_differs(tmp_path, monkeypatch):
    """A shard-mean that is not the batch mean (planted: the last shard counted twice) breaks the control."""
    from kd2m_ref.cli import main
    from verification.distributed_bias import experiment

    real = experiment.estimates

    def biased(losses, zs, zt, labels, head):
        out = real(losses, zs, zt, labels, head)
        out["hinton_kd"] = {w: v * (1 + 1e-6 * (w > 1)) for w, v in out["hinton_kd"].items()}
        return out

    assert main(["verify", "distributed_bias", "--profile", "smoke", "--out", str(tmp_path / "ok")]) == 0
    monkeypatch.setattr(experiment, "estimates", biased)
    assert main(["verify", "distributed_bias", "--profile", "smoke", "--out", str(tmp_path / "bad")]) == 1
