r"""``kd2m-ref verify resnet``: teacher -> student distillation with every loss, and Theorem 3.1 checked.

Per profile (:data:`PROFILES`): a ResNet-34 teacher trained once on the training split less a
validation split (cached with a checksum), then ResNet-18 students that learn from a smaller
labelled subset: a CE-only baseline and one student per loss of
:data:`verification.resnet.train.LOSSES`, with the same recipe, initialisation, batch order and
augmentation per seed. The teacher must first beat the baseline on validation data by a stated
margin (the gate). Each loss's lambda = rho * CE0 / D0 takes its rho from one grid, selected on
validation accuracy with selection seeds; the selected rho then runs on disjoint evaluation seeds,
compared with the baseline of the same seed (:mod:`verification.resnet.analysis`). Every run gets the
held-out Theorem 3.1 checks, the kernel-head form of Lemma 1
(:func:`verification.resnet.bounds.kernel_head_check`) and the vacuity of each bound.

**Held-out integrity.** Every held-out output (teacher, students, untrained students) comes from
:func:`held_out`, and every run carries a must-hold check (``held_out``, :func:`held_out_integrity`)
that the arrays of its theorem checks have the held-out size and that the labels returned with the
teacher's and the student's outputs are exactly the held-out labels: training-split outputs in a
held-out term make the command exit 1.
Writes ``runs/**.json`` (one per run, with provenance), ``summary.json`` and PNG figures under
``verification/results/<profile>/resnet/<dataset>/``; checkpoints under
``verification/results/<profile>/checkpoints/resnet/<dataset>/`` (git-ignored), from which an
interrupted command resumes; a finished run is never recomputed.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import RESULTS_DIR
from ..results import clean, provenance, write_json

#: Profiles. ``smoke``: seconds, for tests. ``quick``: minutes on 2 CPU cores (``make book``).
#: ``standard``: the committed CPU run. ``full``: paper scale (CIFAR/SVHN root, GPU).
#: ``validation``: images carved from the training split for rho selection and the gate;
#: ``student_train``: labelled images the students learn from (the teacher learns from the whole
#: rest of the training split); ``rhos``: the grid of lambda = rho * CE0 / D0, the same for every
#: loss; ``selection_seeds`` / ``seeds``: student seeds of the grid / of the evaluation (disjoint);
#: ``gate_margin``: accuracy the teacher must gain over the CE-only student on validation data
#: (None: reported, not applied). ``threads``: torch CPU threads; one, because two OpenMP threads
#: oversubscribe two cores as soon as any other process runs on them.
PROFILES = {
    "smoke": dict(dataset="mnist5k", image_size=12, train_limit=400, test_limit=120, validation=100,
                  student_train=100, rhos=(0.3, 3.0), selection_seeds=1, seeds=2, gate_margin=None,
                  recipe=dict(width=1 / 32, epochs=1, teacher_epochs=1, batch_size=32, calibration_batches=2),
                  subsample=40, repeats=2, projection_points=50, threads=1, kernel_fit=60),
    "quick": dict(dataset="mnist5k", image_size=16, train_limit=None, test_limit=None, validation=500,
                  student_train=500, rhos=(0.3, 3.0), selection_seeds=1, seeds=2, gate_margin=0.02,
                  recipe=dict(width=1 / 16, epochs=10, teacher_epochs=6),
                  subsample=300, repeats=2, projection_points=300, threads=1, kernel_fit=200),
    "standard": dict(dataset="mnist5k", image_size=16, train_limit=None, test_limit=None, validation=500,
                     student_train=500, rhos=(0.1, 0.3, 1.0, 3.0, 10.0), selection_seeds=2, seeds=8,
                     gate_margin=0.02, recipe=dict(width=1 / 16, epochs=30, teacher_epochs=20),
                     subsample=500, repeats=3, projection_points=300, threads=1, kernel_fit=200),
    "full": dict(dataset=None, image_size=None, train_limit=None, test_limit=None, validation=5000,
                 student_train=None, rhos=(0.1, 1.0, 10.0), selection_seeds=1, seeds=5, gate_margin=0.01,
                 recipe=dict(width=1.0, epochs=60, teacher_epochs=60, batch_size=128),
                 subsample=2000, repeats=5, projection_points=500, threads=None, kernel_fit=200),
}

#: The paper's recipe (``--recipe paper``): its architecture, optimiser and fixed lambda = 1e-4
#: (rho = 1), on top of a profile; pretrained weights come from files the user supplies.
PAPER_RECIPE = dict(width=1.0, stem="imagenet", epochs=15, teacher_epochs=15, batch_size=128, lr=1e-2,
                    weight_decay=0.0, fixed_lambda=1e-4)


def _settings(profile: str, dataset: str | None, overrides: dict, paper_recipe: bool = False) -> dict:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}; got {profile!r}")
    cfg = {**PROFILES[profile], "recipe": dict(PROFILES[profile]["recipe"])}
    cfg["dataset"] = dataset or cfg["dataset"]
    if cfg["dataset"] is None:
        raise SystemExit("the full profile needs --dataset cifar10|cifar100|svhn and --root (and a GPU)")
    if paper_recipe:  # the paper: one lambda (1e-4, rho = 1) for every loss, nothing to select
        cfg["recipe"].update(PAPER_RECIPE)
        cfg["rhos"] = (1.0,)
    for key in ("epochs", "teacher_epochs", "width"):
        if overrides.get(key) is not None:
            cfg["recipe"][key] = overrides[key]
    if overrides.get("seeds") is not None:
        cfg["seeds"] = overrides["seeds"]
    return cfg


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _code_version() -> str:
    """Hash of the sources that compute a run's numbers (data, models, training, bounds and their
    distances): part of every cache key, so a changed computation is never served from the cache."""
    here = Path(__file__).parent
    files = [here / f for f in ("data.py", "models.py", "train.py", "bounds.py")] + \
            [here.parent / f for f in ("distances.py", "functions.py")]
    return _hash([f.read_text() for f in files])


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _arm_name(metric: str | None, rho: float) -> str:
    return "baseline" if metric is None else f"{metric}_rho{rho:g}"


def cached_teacher(path: Path, card: dict) -> dict | None:
    """The card of a finished cached teacher (``<checkpoint>.json``: recipe, data, sha256 of the
    weights), or None when there is none yet; a checkpoint whose checksum differs from its card is an error."""
    card_path = Path(str(path) + ".json")
    if not (path.is_file() and card_path.is_file()):
        return None
    saved = json.loads(card_path.read_text())
    if saved.get("sha256") != _sha256(path):
        raise RuntimeError(f"cached teacher {path} does not match the checksum in {card_path.name}: the file "
                           "changed after training; delete both files (or pass --fresh) to train it again")
    if saved.get("key") != card["key"]:
        raise RuntimeError(f"cached teacher card {card_path} was written for another recipe or data")
    return saved


def held_out(model, data, device="cpu"):
    """``(logits, features, labels)`` of the held-out split: the one held-out evaluation of the
    experiment (teacher, students, untrained students), through ``verification.resnet.train.predict``."""
    from . import train

    return train.predict(model, data, device, split="test")


def training_outputs(model, data, device="cpu", index=None):
    """``(logits, features, labels)`` of the training split (of its rows ``index`` when given)."""
    import torch

    from . import train

    if index is not None:
        index = torch.as_tensor(np.asarray(index), dtype=torch.int64)
        data = replace(data, x_train=data.x_train[index.to(data.x_train.device)], y_train=data.y_train[index])
    return train.predict(model, data, device, split="train")


def held_out_integrity(data, teacher, student, *, teacher_fit_labels=None, student_fit_labels=None,
                       fit_index=None) -> dict:
    """Must-hold check that a run's theorem checks see held-out outputs.

    ``teacher`` and ``student`` are the ``(logits, features, labels)`` triples given to the theorem
    checks: each array must have the held-out size and the labels must be exactly ``data.y_test``.
    When given, the training labels returned with the teacher's training features must be
    ``data.y_train`` and those of the student's kernel-head inputs ``data.y_train[fit_index]``.
    """
    y_test = data.y_test.cpu().numpy()
    n = len(y_test)
    problems = []
    for name, (u, z, y) in (("teacher", teacher), ("student", student)):
        sizes = {"logits": len(u), "features": len(z), "labels": len(y)}
        if any(v != n for v in sizes.values()):
            problems.append(f"{name}: sizes {sizes}, held-out size {n}")
        if not np.array_equal(np.asarray(y), y_test):
            problems.append(f"{name}: the labels returned with its outputs are not the held-out labels")
    y_train = data.y_train.cpu().numpy()
    if teacher_fit_labels is not None and not np.array_equal(np.asarray(teacher_fit_labels), y_train):
        problems.append("teacher: the labels returned with its training features are not the training labels")
    if student_fit_labels is not None and not np.array_equal(np.asarray(student_fit_labels), y_train[fit_index]):
        problems.append("student: the labels returned with its training features are not the training labels")
    return {"holds": not problems, "must_hold": True, "n_expected": n, "problems": problems}


def run(profile: str = "quick", seed: int = 0, out: Path | None = None, command: str = "", *,
        dataset: str | None = None, root=None, download: bool = False, device: str = "auto",
        threads: int | None = None, epochs: int | None = None, teacher_epochs: int | None = None,
        n_seeds: int | None = None, width: float | None = None, losses=None, progress: bool = True,
        fresh: bool = False, make_figures: bool = True, recipe: str = "ours", teacher_weights=None,
        student_weights=None) -> dict:
    """Run (or resume) the protocol for ``profile`` and return the summary (also written to disk).

    Order: the teacher (trained once, cached with a checksum); the CE-only baseline on the selection
    and evaluation seeds; the gate (the teacher must beat the baseline on validation data by the
    profile's margin, else no distilled student trains and the command exits 1); every loss on the
    rho grid (selection seeds, scored on validation data); every loss at its selected rho (evaluation
    seeds). Evaluation seeds are ``seed, seed + 1, ...``, selection seeds ``seed + 100, ...``, the
    teacher's ``10000 + seed``. ``losses`` restricts the distilled arms; ``fresh`` ignores
    checkpoints and cached runs; ``recipe="paper"`` uses :data:`PAPER_RECIPE`, with pretrained
    initial weights from ``teacher_weights`` / ``student_weights`` (files, see
    :func:`verification.resnet.models.load_weights`). ``make_figures=False`` skips the PNGs.
    """
    import torch
    from tqdm.auto import tqdm

    from kd2m_ref.torch import KD2MLoss

    from ..functions import LinearHead
    from . import parallel
    from .analysis import compare, correlations, select_rho, selection_check, teacher_gate
    from .bounds import count_violations, median_bandwidth, theorem_checks
    from .data import carve, load_data
    from .models import load_weights
    from .plots import save_all
    from .train import LOSSES, Recipe, calibrate_weight, joint_beta, loss_params, new_model, train

    started = time.perf_counter()
    if recipe not in ("ours", "paper"):
        raise ValueError(f"recipe must be 'ours' or 'paper'; got {recipe!r}")
    cfg = _settings(profile, dataset, {"epochs": epochs, "teacher_epochs": teacher_epochs, "width": width,
                                       "seeds": n_seeds}, paper_recipe=recipe == "paper")
    threads = threads if threads is not None else cfg["threads"]
    if threads:
        torch.set_num_threads(int(threads))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = parallel.init(device)  # under torchrun: join the process group, one device per rank
    save = write_json if parallel.is_main() else (lambda path, payload: path)  # rank 0 writes results
    rec = Recipe(**cfg["recipe"])
    losses = list(losses or LOSSES)
    rhos = tuple(float(r) for r in cfg["rhos"])
    seeds = [seed + i for i in range(cfg["seeds"])]
    selection_seeds = [seed + 100 + i for i in range(cfg["selection_seeds"])] if len(rhos) > 1 else []
    out = Path(out) if out else RESULTS_DIR / profile / "resnet" / cfg["dataset"]
    default_out = RESULTS_DIR / profile / "resnet" / cfg["dataset"]
    ckpt_dir = (RESULTS_DIR / profile / "checkpoints" / "resnet" / cfg["dataset"] if out == default_out
                else out / "checkpoints")
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    (ckpt_dir / ".gitignore").write_text("# trained weights: regenerated by the command, never committed\n*\n")
    command = command or " ".join(sys.argv)
    weights = {"teacher": teacher_weights, "student": student_weights}
    weight_sums = {k: (_sha256(v) if v else None) for k, v in weights.items()}

    full = load_data(cfg["dataset"], root=root, download=download, image_size=cfg["image_size"],
                     train_limit=cfg["train_limit"], test_limit=cfg["test_limit"])
    tdata, sdata, split_index = carve(full, cfg["validation"], cfg["student_train"])
    if device != "cpu":
        tdata, sdata = ((replace(d, x_train=d.x_train.to(device), x_test=d.x_test.to(device),
                                 x_val=d.x_val.to(device)) for d in (tdata, sdata)))
    base_key = {"data": full.describe(), "split": {k: _hash(v.tolist()) for k, v in split_index.items()},
                "recipe": rec.as_dict(), "profile": profile, "init_weights": weight_sums, "code": _code_version()}
    splits = {"validation": len(split_index["validation"]), "teacher_train": len(split_index["teacher"]),
              "student_train": len(split_index["student"]), "test": len(full.y_test),
              "disjoint": _disjoint_check(split_index)}

    def prov(wall):
        p = provenance(command=command, profile=profile, seed=seed, wall_time_s=wall)
        p["device"] = f"{device}, torch {torch.get_num_threads()} thread(s)" + (
            f", {torch.cuda.get_device_name()}" if device.startswith("cuda") else "") + (
            f", {parallel.world_size()} processes (torchrun, DDP)" if parallel.world_size() > 1 else "")
        return p

    def ckpt(name, key):
        path = ckpt_dir / f"{name}-{_hash(key)}.pt"
        if fresh and parallel.is_main():
            for old in (path, Path(str(path) + ".json")):
                old.unlink(missing_ok=True)
        parallel.barrier()
        return path

    def initialised(depth, s, role):
        model = new_model(depth, tdata, rec, s, device)
        if weights[role]:
            load_weights(model, weights[role])
        return model

    # ---------------------------------------------------------------- teacher (trained once, cached)
    t0 = time.perf_counter()
    teacher_seed = 10_000 + seed
    teacher = initialised(rec.teacher_depth, teacher_seed, "teacher")
    tkey = {**base_key, "arm": "teacher", "seed": teacher_seed}
    tpath = ckpt("teacher", tkey)
    card = {"key": _hash(tkey), "recipe": rec.as_dict(), "data": tdata.describe(), "seed": teacher_seed,
            "epochs": rec.teacher_epochs, "init_weights": weight_sums["teacher"]}
    reused = cached_teacher(tpath, card) if not fresh else None
    tstate = train(teacher, tdata, rec, seed=teacher_seed, epochs=rec.teacher_epochs, checkpoint=tpath,
                   device=device, desc=f"teacher (ResNet-{rec.teacher_depth})", progress=progress)
    parallel.barrier()  # rank 0 writes the checkpoint: every rank reads it after this
    digest = reused["sha256"] if reused else _sha256(tpath)  # a reused checkpoint is verified and left as is
    if reused is None and parallel.is_main():
        write_json(Path(str(tpath) + ".json"), {**card, "sha256": digest})
    teacher.eval().requires_grad_(False)
    ut, zt, y = held_out(teacher, sdata, device)
    uv_t = validation_outputs(teacher, sdata, device)
    _, zt_train, yt_train = training_outputs(teacher, sdata, device)
    sigma = median_bandwidth(zt_train)
    # The kernel heads' training inputs: one fixed subsample of the students' training images for every run.
    fit_index = np.sort(np.random.default_rng(seed).choice(len(yt_train), min(cfg["kernel_fit"], len(yt_train)),
                                                           replace=False))
    zt_fit, y_fit = zt_train[fit_index], yt_train[fit_index]
    beta = joint_beta(zt_train)
    head = LinearHead(teacher.fc.weight.detach().double().cpu().numpy(),
                      teacher.fc.bias.detach().double().cpu().numpy())
    n_proj = min(cfg["projection_points"], len(y))
    centre = zt.mean(0)
    _, _, vt = np.linalg.svd(zt - centre, full_matrices=False)
    basis = vt[:2].T  # PCA of the teacher's held-out features: the one projection of every Fig. 3 panel

    def project(z):
        return (z[:n_proj] - centre) @ basis

    teacher_record = {"arm": "teacher", "depth": rec.teacher_depth, "seed": teacher_seed,
                      "feature_dim": teacher.feature_dim, "test_accuracy": float(np.mean(ut.argmax(1) == y)),
                      "val_accuracy": float(np.mean(uv_t[0].argmax(1) == uv_t[2])),
                      "history": tstate.history, "resumed_from_epoch": tstate.resumed_from_epoch,
                      "cache": {"file": tpath.name, "sha256": digest, "reused": reused is not None},
                      "sigma_median_heuristic": sigma, "joint_beta": beta, "kernel_fit_index": fit_index,
                      "projection": {"labels": y[:n_proj], "points": project(zt)}}
    save(out / "runs" / "teacher.json", {**teacher_record, "data": tdata.describe(), "recipe": rec.as_dict(),
                                          "provenance": prov(time.perf_counter() - t0)})

    def evaluate(model, s, metric=None, params=None, keep_projection=False):
        us, zs, ys = held_out(model, sdata, device)
        uv, _, yv = validation_outputs(model, sdata, device)
        _, zs_fit, ys_fit = training_outputs(model, sdata, device, fit_index)
        integrity = held_out_integrity(sdata, (ut, zt, y), (us, zs, ys), teacher_fit_labels=yt_train,
                                       student_fit_labels=ys_fit, fit_index=fit_index)
        # A failed integrity check is counted; the rest is still computed (on the common rows) and recorded.
        n = min(len(ut), len(zt), len(y), len(us), len(zs))
        fit = (zt_fit, zs_fit, y_fit) if len(zs_fit) == len(zt_fit) else None
        checks = theorem_checks(zt[:n], zs[:n], ut[:n], us[:n], y[:n], head, sigma=sigma, subsample=cfg["subsample"],
                                repeats=cfg["repeats"], seed=s, fit=fit)
        checks["checks"]["held_out"] = integrity
        checks["violations"] = count_violations(checks["checks"])
        result = {"test_accuracy": float(np.mean(us[:n].argmax(1) == y[:n])),
                  "val_accuracy": float(np.mean(uv.argmax(1) == yv)), "theorem": checks,
                  "own_distance": None if metric is None else own_distance(metric, params, zs, zt, us, ut, y)}
        if keep_projection:
            result["projection"] = {"points": project(zs)}
        return result

    # ---------------------------------------------------------------- students
    records, inits = [], {}

    def student(phase, s, metric, rho, bar):
        name = _arm_name(metric, rho)
        bar.set_postfix(phase=phase, seed=s, arm=name, refresh=True)
        params = loss_params(metric, beta) if metric else {}
        key = {**base_key, "arm": name, "metric": metric, "params": params, "rho": rho, "seed": s,
               "teacher": _hash(tkey), "evaluation": {k: cfg[k] for k in ("subsample", "repeats", "kernel_fit")}}
        path = ckpt(f"seed{s}-{name}", key)
        done = Path(str(path) + f".{phase}.json")
        keep = phase == "evaluation" and s == seeds[0]
        if done.is_file() and not fresh:  # a finished run: not recomputed
            record = json.loads(done.read_text())
        else:
            t0 = time.perf_counter()
            model = initialised(rec.student_depth, s, "student")
            loss = calibration = None
            if metric is not None:
                loss = KD2MLoss(metric, weight=1.0, sync="global", **params)  # the global batch under torchrun
                if not path.is_file():
                    calibration = calibrate_weight(model, teacher, loss, sdata, rec, s, rho, device)
                    loss.weight = calibration["weight"]
            state = train(model, sdata, rec, seed=s, epochs=rec.epochs, teacher=teacher if loss else None,
                          loss=loss, checkpoint=path, device=device, desc=f"seed {s} {name}", progress=progress,
                          calibration=calibration)
            record = {"phase": phase, "arm": name, "metric": metric, "params": params, "rho": rho,
                      "weight": state.weight, "calibration": state.calibration, "seed": s,
                      "depth": rec.student_depth, **evaluate(model, s, metric, params, keep),
                      "history": state.history, "resumed_from_epoch": state.resumed_from_epoch,
                      "provenance": prov(time.perf_counter() - t0)}
            save(out / "runs" / phase / f"seed{s}" / f"{name}.json", record)
            if parallel.is_main():
                write_json(done, record)
            record = json.loads(json.dumps(clean(record)))
        records.append(record)

    def untrained(s):  # the untrained student of an evaluation seed: Fig. 3 "before" and the bounds at init
        t0 = time.perf_counter()
        model = initialised(rec.student_depth, s, "student")
        inits[s] = {"arm": "init", "seed": s, "phase": "evaluation", "metric": None, "rho": 0.0,
                    **evaluate(model, s, keep_projection=s == seeds[0])}
        save(out / "runs" / "evaluation" / f"seed{s}" / "init.json",
             {**inits[s], "provenance": prov(time.perf_counter() - t0)})

    plan = [("evaluation", s, None, 0.0) for s in seeds] + [("selection", s, None, 0.0) for s in selection_seeds]
    bar = tqdm(total=len(plan) + len(losses) * (len(selection_seeds) * len(rhos) + len(seeds)),
               desc=f"verify resnet ({profile}, {cfg['dataset']})", unit="run",
               disable=not progress or not parallel.is_main())
    for s in seeds:
        untrained(s)
    for phase, s, metric, rho in plan:
        student(phase, s, metric, rho, bar)
        bar.update(1)
    gate = teacher_gate(teacher_record["val_accuracy"],
                        [r["val_accuracy"] for r in records if r["phase"] == "evaluation"], cfg["gate_margin"])
    selection = {}
    if gate["holds"] is not False:
        for metric in losses:
            for s in selection_seeds:
                for rho in rhos:
                    student("selection", s, metric, rho, bar)
                    bar.update(1)
        selection = (select_rho(records, losses, rhos) if selection_seeds
                     else {m: {"rho": rhos[0], "val_mean": {}} for m in losses})
        for metric in losses:
            for s in seeds:
                student("evaluation", s, metric, selection[metric]["rho"], bar)
                bar.update(1)
    bar.close()

    checks = {"splits": splits["disjoint"],
              "selection": selection_check(selection, records, rhos) if selection_seeds and selection else None}
    result = _summary(profile, cfg, full, rec, seeds, selection_seeds, rhos, teacher_record, records, inits, losses,
                      gate, selection, splits, checks, device, recipe)
    result["analysis"] = ({"comparison": compare(records, losses, selection),
                           "correlations": correlations(records, result["all_bounds"], losses)}
                          if gate["holds"] is not False else None)
    result["provenance"] = prov(time.perf_counter() - started)
    save(out / "summary.json", result)
    parallel.barrier()
    result = json.loads((out / "summary.json").read_text())
    if make_figures and parallel.is_main():
        save_all(result, out)
    return result


def _disjoint_check(index: dict) -> dict:
    """Must-hold: validation images are neither teacher nor student training images, and the students'
    images are teacher training images (the teacher has seen everything a student sees)."""
    val, tea, stu = (set(index[k].tolist()) for k in ("validation", "teacher", "student"))
    problems = ([f"{len(val & tea)} validation images in the teacher's training set"] if val & tea else []) + \
               ([f"{len(val & stu)} validation images in the students' training set"] if val & stu else []) + \
               ([f"{len(stu - tea)} student images outside the teacher's training set"] if stu - tea else [])
    return {"holds": not problems, "must_hold": True, "problems": problems}


def validation_outputs(model, data, device="cpu"):
    """``(logits, features, labels)`` of the validation split (rho selection and the gate only)."""
    from . import train

    return train.predict(model, data, device, split="val")


def own_distance(metric, params, zs, zt, us, ut, y) -> float:
    """The loss's own distance D(student, teacher) on the whole held-out split, in float64."""
    import torch

    from kd2m_ref.torch import KD2MLoss

    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    d = KD2MLoss(metric, weight=1.0, **params).distance(t(zs), t(zt), torch.as_tensor(np.asarray(y)), t(us), t(ut))
    return float(d)


def _bound_row(rec: dict) -> dict:
    th = rec["theorem"]
    sub, lce = th["subsamples"], th["constants"]["L_ce"]
    head = ({k: th["kernel_head"][k] for k in ("gap", "bound", "trivial", "mmd", "ratio", "vacuous")}
            if "kernel_head" in th else None)
    return {"arm": rec["arm"], "metric": rec["metric"], "rho": rec["rho"], "seed": rec["seed"], "phase": rec["phase"],
            "test_error": 1 - rec["test_accuracy"], "gap_subsample": sub["gap"]["mean"],
            "gap_full": th["gap_hybrid_teacher_ce"], "L_ce": lce,
            "L_w1_conditional": lce * sub["w1_conditional"]["mean"], "L_w1_marginal": lce * sub["w1_marginal"]["mean"],
            "L_coupling": lce * th["coupling"]["mean"], "w1_null": sub["w1_null"]["mean"],
            "w1_marginal": sub["w1_marginal"]["mean"], "w1_conditional": sub["w1_conditional"]["mean"],
            "mmd": sub["mmd"]["mean"], "coupling_mean": th["coupling"]["mean"], "coupling_max": th["coupling"]["max"],
            "coupling_p99": th["coupling"]["p99"], "risks": th["risks"],
            "margin_bound": th["checks"]["margin"]["rhs"], "hybrid_error": th["margin"]["hybrid_error"],
            "violations": th["violations"],
            "marginal_form_failures": th["checks"]["marginal_form_subsamples"]["violations"],
            "marginal_form_of": th["checks"]["marginal_form_subsamples"]["of"],
            "held_out_ok": th["checks"].get("held_out", {"holds": True})["holds"],
            "kernel_head": head, "kernel_head_bound": head["bound"] if head else None,
            "kernel_head_holds": th["checks"]["kernel_head"]["holds"] if "kernel_head" in th["checks"] else None,
            "vacuity": th["vacuity"]}


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def _vacuity(bounds: list[dict]) -> dict:
    """Per bound: in how many runs it is vacuous, its median, and the median of what it has to beat."""
    out = {}
    for key in ("ce", "margin", "kernel_head"):
        rows = [(b["arm"], b["vacuity"][key]) for b in bounds if key in b["vacuity"]]
        if not rows:
            continue
        entry = {"vacuous": sum(v["vacuous"] for _, v in rows), "of": len(rows),
                 "trained_vacuous": sum(v["vacuous"] for a, v in rows if a != "init"),
                 "trained_of": sum(1 for a, _ in rows if a != "init"),
                 "median_bound": _median([v["bound"] for _, v in rows]),
                 "trivial": _median([v["trivial"] for _, v in rows]),
                 "median_ratio_to_trivial": _median([v["bound"] / v["trivial"] for _, v in rows if v["trivial"] > 0]),
                 "what": rows[0][1]["what"]}
        if key == "margin":
            entry["above_majority_error"] = sum(v["above_majority_error"] for _, v in rows)
            entry["majority_error"] = _median([v["majority_error"] for _, v in rows])
        if key == "kernel_head":
            heads = [b["kernel_head"] for b in bounds if b["kernel_head"]]
            entry["median_mmd"] = _median([h["mmd"] for h in heads])
            entry["median_gap_over_bound"] = _median([h["ratio"] for h in heads])
        out[key] = entry
    return out


def _summary(profile, cfg, data, recipe, seeds, selection_seeds, rhos, teacher, records, inits, losses, gate,
             selection, splits, checks, device, recipe_kind) -> dict:
    from .analysis import PAPER

    s0 = seeds[0]
    evaluation = [r for r in records if r["phase"] == "evaluation"]
    all_bounds = [_bound_row(r) for r in records] + [_bound_row(i) for i in inits.values()]
    bounds = [b for b in all_bounds if b["phase"] == "evaluation"]
    curve_metric = "wasserstein" if "wasserstein" in losses else losses[0]
    curve_seed = selection_seeds[0] if selection_seeds else s0
    curves = [r for r in records if r["seed"] == curve_seed and r["metric"] in (None, curve_metric)]
    first = [r for r in evaluation if r["seed"] == s0]
    margin_curves = {r["arm"]: {"gammas": r["theorem"]["margin"]["gammas"], "bound": r["theorem"]["margin"]["bound"],
                                "hybrid_error": r["theorem"]["margin"]["hybrid_error"]}
                     for r in [inits[s0]] + first}
    projection = {"teacher": teacher["projection"], "init": inits[s0]["projection"]["points"],
                  "students": {("baseline" if r["metric"] is None else r["metric"]): r["projection"]["points"]
                               for r in first}}
    w = recipe.width
    in_paper = data.name in PAPER["columns"]
    differences = [
        f"data: {data.name} ({splits['teacher_train']} teacher training / {splits['student_train']} student "
        f"training / {splits['validation']} validation / {splits['test']} held-out test images, "
        f"{data.in_channels}x{data.image_size}x{data.image_size})"
        + ("" if in_paper else "; the paper used SVHN, CIFAR-10 and CIFAR-100 (3x32x32), so its columns are "
                               "beside ours, not comparable to them"),
        f"regime: the students learn from {splits['student_train']} labelled images, the teacher from "
        f"{splits['teacher_train']} (paper: both from the whole training set)",
        f"width: multiplier {w:g}, {round(64 * w) * 8}-d features (paper: 512-d, width 1)",
        f"epochs: teacher {recipe.teacher_epochs}, students {recipe.epochs} (paper: 15)",
        "initialisation: " + ("from the supplied weight files" if recipe_kind == "paper" else
                              "from scratch, Kaiming normal (paper: ImageNet-pretrained torchvision weights)"),
        f"stem: {recipe.stem}" + ("" if recipe.stem == "imagenet" else
                                  " 3x3 stride 1, no max-pool (paper: ImageNet 7x7 stride 2 + max-pool on 32x32)"),
        ("lambda: 1e-4 for every loss, as in the paper" if recipe.fixed_lambda is not None else
         f"lambda: rho * CE0 / D0 per loss and seed, rho selected per loss from {list(rhos)} on validation data "
         "(paper: lambda = 1e-4 for every loss)"),
        f"optimiser: SGD lr {recipe.lr:g}, momentum {recipe.momentum:g}, weight decay {recipe.weight_decay:g}, "
        f"cosine per step, batch {recipe.batch_size}, identical for every arm including the baseline (paper: lr 1e-2, "
        "no weight decay, the baseline at a constant lr)",
        f"seeds: {len(seeds)} evaluation seeds per arm, {len(selection_seeds)} selection seed(s) per grid point, "
        "one cached teacher (paper: seed 42, one run)",
    ]
    must_hold = (sum(b["violations"] for b in all_bounds) + (not checks["splits"]["holds"])
                 + (checks["selection"] is not None and not checks["selection"]["holds"]) + (gate["holds"] is False))
    return {
        "experiment": "ResNet teacher -> student distillation; Theorem 3.1 and Lemma 1 on held-out data",
        "profile": profile, "recipe_kind": recipe_kind, "dataset": data.describe(), "splits": splits,
        "recipe": recipe.as_dict(), "seeds": seeds, "selection_seeds": selection_seeds, "rhos": list(rhos),
        "losses": list(losses), "device": device,
        "settings": {"image_size": cfg["image_size"], "subsample": cfg["subsample"], "repeats": cfg["repeats"],
                     "lambda_rule": "lambda = rho * mean CE / mean D on the first calibration batches of epoch 0 at "
                                    "the student's initialisation (verification.resnet.train.calibrate_weight)"
                                    if recipe.fixed_lambda is None else f"lambda = {recipe.fixed_lambda:g}",
                     "selection_rule": "per loss, the rho of the grid with the highest mean validation accuracy over "
                                       "the selection seeds (ties: the smaller rho)",
                     "sigma_rule": "median pairwise distance of teacher training features (fixed before evaluation)",
                     "joint_beta_rule": "median squared distance of teacher training features",
                     "kernel_head_rule": f"kernel ridge regression (ridge 1e-3 * m) of one-hot labels on the "
                                         f"teacher's and on the student's training features of the same "
                                         f"{cfg['kernel_fit']} training inputs, Gaussian kernel of bandwidth "
                                         f"sqrt2 * sigma; loss sum_c (h_c - h*_c)^2 in the RKHS of bandwidth sigma"},
        "teacher": teacher,
        "gate": gate,
        "selection": selection,
        "paper": {**PAPER, "column": data.name if in_paper else None},
        "differences": differences,
        "curves": {"metric": curve_metric, "seed": curve_seed,
                   "runs": sorted(({"rho": r["rho"], "weight": r["weight"], "val_accuracy": r["val_accuracy"],
                                    "history": r["history"]} for r in curves), key=lambda d: d["rho"])},
        "validation_grid": {m: [{"rho": r["rho"], "seed": r["seed"], "val_accuracy": r["val_accuracy"]}
                                for r in records if r["metric"] == m and r["phase"] == "selection"] for m in losses},
        "bounds": bounds,
        "all_bounds": all_bounds,
        "margin_curves": margin_curves,
        "projection": projection,
        "vacuity": _vacuity(bounds),
        "checks": {**checks, "must_hold_violations": int(must_hold),
                   "held_out_failures": sum(not b["held_out_ok"] for b in all_bounds),
                   "kernel_head_violations": sum(b["kernel_head_holds"] is False for b in all_bounds),
                   "marginal_form_failures": sum(b["marginal_form_failures"] for b in all_bounds),
                   "marginal_form_trials": sum(b["marginal_form_of"] for b in all_bounds),
                   "runs": len(all_bounds)},
    }


def figures(payload: dict, out: Path) -> list[Path]:
    """Redraw the PNGs of ``out`` from a summary payload."""
    from .plots import save_all

    return save_all(payload, Path(out))


def violations(payload: dict) -> int:
    """Violations of the must-hold checks (the exit status of ``kd2m-ref verify resnet`` is 1 when > 0)."""
    return int(payload["checks"]["must_hold_violations"])


def summary(result: dict) -> str:
    """One paragraph for the terminal."""
    gate, c = result["gate"], result["checks"]
    head = (f"verify resnet ({result['profile']}, {result['dataset']['name']}, {len(result['seeds'])} evaluation "
            f"seed(s)): teacher {100 * result['teacher']['test_accuracy']:.2f} % test, gate: teacher - baseline = "
            f"{100 * gate['gap']:+.2f} points on validation")
    if gate["holds"] is False:
        return (head + f" < {100 * gate['margin']:.1f} required: NO CONCLUSIONS, no distilled student trained "
                f"(exit 1); {result['provenance']['wall_time_s']} s")
    cmp = result["analysis"]["comparison"]
    verdicts = {}
    for row in cmp["differences"]:
        verdicts.setdefault(row["verdict"], []).append(f"{row['arm']} {100 * row['difference']['mean']:+.2f}")
    base = cmp["accuracy"]["baseline"]
    return (head + ("" if gate["applied"] else " (gate not applied in this profile)")
            + f"; baseline {100 * base['estimate']:.2f} %; "
            + "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(verdicts.items()))
            + f" (points, Holm-corrected paired t at {cmp['alpha']}); {c['must_hold_violations']} violations of the "
            f"must-hold checks over {c['runs']} runs; marginal form failed on {c['marginal_form_failures']} of "
            f"{c['marginal_form_trials']} subsamples; {result['provenance']['wall_time_s']} s")
