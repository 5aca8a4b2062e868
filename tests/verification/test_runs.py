"""``kd2m-ref verify``: the smoke profile runs, writes JSON with provenance and figures, finds no chain
violation, and the same seed gives the same JSON (apart from the provenance block)."""

from __future__ import annotations

import json

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
