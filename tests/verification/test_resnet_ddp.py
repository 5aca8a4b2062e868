"""The ResNet recipe under ``torchrun --nproc_per_node 2`` (gloo, CPU, 127.0.0.1): the same command line
as one process trains the smoke profile with DDP, ``KD2MLoss(sync="global")`` and rank-0 writing; the
global batch seen by the loss is the single-process batch."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tqdm")

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_processes_trains_the_smoke_profile(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    if sys.platform.startswith("linux") and os.path.exists("/sys/class/net/lo"):
        env["GLOO_SOCKET_IFNAME"] = "lo"
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
           "-m", "kd2m_ref.cli", "verify", "resnet", "--profile", "smoke", "--losses", "class_conditional_wasserstein",
           "--out", str(out), "--threads", "1", "--no-progress"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert "2 processes (torchrun, DDP)" in summary["provenance"]["device"]
    assert summary["checks"]["must_hold_violations"] == 0
    name = f"class_conditional_wasserstein_rho{summary['selection']['class_conditional_wasserstein']['rho']:g}.json"
    runs = sorted(p.name for p in (out / "runs" / "evaluation" / "seed0").glob("*.json"))
    assert runs == ["baseline.json", name, "init.json"]
    kd = json.loads((out / "runs" / "evaluation" / "seed0" / name).read_text())
    assert kd["weight"] > 0 and all(np.isfinite(h["train_distance"]) for h in kd["history"])
    # rank 0 only: the teacher, 3 baselines (2 evaluation seeds, 1 selection seed), 2 grid points, 2 evaluations
    assert len(list((out / "checkpoints").glob("*.pt"))) == 8


def test_shards_are_the_distributed_sampler_split_of_the_global_batch(monkeypatch):
    """Rank r takes rows r, r + W, ...: together the ranks hold the single-process batch, each row once."""
    from verification.resnet import parallel

    batch = torch.arange(12.0)
    monkeypatch.setattr(parallel, "world_size", lambda: 3)
    shards = []
    for r in range(3):
        monkeypatch.setattr(parallel, "rank", lambda r=r: r)
        shards.append(parallel.shard(batch))
    assert shards[0].tolist() == [0.0, 3.0, 6.0, 9.0]
    assert sorted(torch.cat(shards).tolist()) == batch.tolist()
    monkeypatch.setattr(parallel, "world_size", lambda: 5)
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        parallel.shard(batch)
