"""``kd2m-ref verify``: the smoke profile runs, writes JSON with provenance and figures, finds no chain
violation, and the same seed gives the same JSON (apart from the provenance block)."""

from __future__ import annotations

import json

import pytest

from kd2m_ref.cli import main


def _load(path):
    data = json.loads(path.read_text())
    prov = data.pop("provenance")
    return data, prov


def test_verify_exact_smoke_is_reproducible(tmp_path, capsys):
    for sub, jobs in (("a", "1"), ("b", "2")):  # also: instances do not depend on the number of workers
        assert main(["verify", "exact", "--profile", "smoke", "--seed", "3", "--out", str(tmp_path / sub),
                     "--jobs", jobs]) == 0
    (a, prov), (b, _) = _load(tmp_path / "a" / "exact.json"), _load(tmp_path / "b" / "exact.json")
    assert a == b
    assert a["chain_violations"] == 0 and a["instances"] == 24
    assert a["e4_counterexample"]["marginal_form_fails"]
    assert {"git_revision", "command", "profile", "seed", "libraries", "device", "wall_time_s"} <= set(prov)
    assert prov["seed"] == 3 and prov["profile"] == "smoke"
    assert (tmp_path / "a" / "exact_tightness.png").stat().st_size > 0
    assert "0 chain violations" in capsys.readouterr().out


@pytest.mark.slow
def test_verify_synthetic_smoke_is_reproducible(tmp_path):
    for sub in ("a", "b"):
        assert main(["verify", "synthetic", "--profile", "smoke", "--seed", "0", "--out", str(tmp_path / sub)]) == 0
    (a, _), (b, _) = _load(tmp_path / "a" / "synthetic.json"), _load(tmp_path / "b" / "synthetic.json")
    assert a == b
    for name in ("fig1_convergence", "fig2_tightness", "fig3_plugin_bias", "fig4_label_scramble", "fig5_training"):
        assert (tmp_path / "a" / f"{name}.png").stat().st_size > 0
    assert all(c["violated"] == 0 for k, c in a["summary_verdicts"].items() if not k.startswith("b4:marginal"))
    for run in a["b3"]["runs"].values():  # deterministic on the held-out empirical measure
        assert run["checks"]["gap_le_L_cond_violations"] == 0
        assert run["checks"]["cond_le_coupling_violations"] == 0
