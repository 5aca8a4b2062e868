r"""``kd2m-ref verify resnet``: teacher -> student distillation with every loss, and Theorem 3.1 checked.

Per profile (:data:`PROFILES`): train a ResNet-34 teacher, then for each seed a CE-only ResNet-18
baseline and one ResNet-18 student per loss of :data:`verification.resnet.train.LOSSES`, all with
the same recipe, initialisation, batch order and augmentation; a lambda sweep (Fig. 2 analogue) on
one loss; held-out Theorem 3.1 checks for every student and for the untrained student (before), the
kernel-head form of Lemma 1 (:func:`verification.resnet.bounds.kernel_head_check`), and how far each
bound is from vacuous.

**Held-out integrity.** Every held-out output (teacher, students, untrained students) comes from
:func:`held_out`, and every run carries a must-hold check (``held_out``, :func:`held_out_integrity`)
that the arrays of its theorem checks have the held-out size and that the labels returned with the
teacher's and the student's outputs are exactly the held-out labels: training-split outputs in a
held-out term make the command exit 1.
Writes ``runs/**.json`` (one per run, with provenance), ``summary.json`` and PNG figures under
``verification/results/<profile>/resnet/<dataset>/``; checkpoints under
``verification/results/<profile>/checkpoints/resnet/<dataset>/`` (git-ignored), from which an
interrupted command resumes.
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
from ..results import provenance, write_json

#: Profiles. ``smoke``: seconds, for tests. ``quick``: minutes on 2 CPU cores (``make book``).
#: ``standard``: the committed CPU run. ``full``: paper scale (CIFAR/SVHN root, GPU).
PROFILES = {
    "smoke": dict(dataset="mnist5k", image_size=12, train_limit=320, test_limit=100, seeds=1,
                  recipe=dict(width=1 / 32, epochs=1, teacher_epochs=1, batch_size=64, calibration_batches=2),
                  sweep=("wasserstein", (0.1, 10.0)), subsample=40, repeats=2, projection_points=50, threads=1,
                  kernel_fit=200),
    "quick": dict(dataset="mnist5k", image_size=16, train_limit=2000, test_limit=None, seeds=2,
                  recipe=dict(width=1 / 16, epochs=3, teacher_epochs=4),
                  sweep=("wasserstein", (0.1, 10.0)), subsample=500, repeats=3, projection_points=300, threads=2,
                  kernel_fit=200),
    "standard": dict(dataset="mnist5k", image_size=16, train_limit=None, test_limit=None, seeds=3,
                     recipe=dict(width=1 / 16, epochs=6, teacher_epochs=10),
                     sweep=("wasserstein", (0.1, 10.0)), subsample=500, repeats=10,
                     projection_points=300, threads=1, kernel_fit=200),
    "full": dict(dataset=None, image_size=None, train_limit=None, test_limit=None, seeds=3,
                 recipe=dict(width=1.0, epochs=60, teacher_epochs=60, batch_size=128),
                 sweep=("wasserstein", (0.1, 10.0)), subsample=2000, repeats=5, projection_points=500, threads=None,
                 kernel_fit=200),
}

#: The paper's Table 1 (test accuracy, %): student and teacher per dataset and the level the KD2M
#: variants reach; the per-loss values are not in the paper's surviving text.
PAPER = {
    "source": "KD2M paper, Table 1 (per-loss values not recoverable from the surviving text: 'KD2M "
              "variants about ...')",
    "svhn": {"student": 93.10, "teacher": 94.41, "kd2m_about": 94.0},
    "cifar10": {"student": 85.11, "teacher": 86.98, "kd2m_about": 86.5},
    "cifar100": {"student": 56.66, "teacher": 62.21, "kd2m_about": 61.0},
    "recipe": "torchvision ResNet-34 -> ResNet-18, ImageNet-pretrained, ImageNet stem on 32x32 inputs, 512-d "
              "features, 15 epochs, SGD lr 1e-2 momentum 0.9, no weight decay, cosine schedule (distilled students "
              "only: the baseline ran at a constant lr), batch 128, crop + flip, lambda = 1e-4, seed 42",
}


def _settings(profile: str, dataset: str | None, overrides: dict) -> dict:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}; got {profile!r}")
    cfg = {**PROFILES[profile], "recipe": dict(PROFILES[profile]["recipe"])}
    cfg["dataset"] = dataset or cfg["dataset"]
    if cfg["dataset"] is None:
        raise SystemExit("the full profile needs --dataset cifar10|cifar100|svhn and --root (and a GPU)")
    for key in ("epochs", "teacher_epochs", "width"):
        if overrides.get(key) is not None:
            cfg["recipe"][key] = overrides[key]
    if overrides.get("seeds") is not None:
        cfg["seeds"] = overrides["seeds"]
    return cfg


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _arm_name(metric: str | None, rho: float, default_rho: float) -> str:
    if metric is None:
        return "baseline"
    return metric if rho == default_rho else f"{metric}_rho{rho:g}"


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
        fresh: bool = False, make_figures: bool = True) -> dict:
    """Run (or resume) the protocol for ``profile`` and return the summary (also written to disk).

    ``seed`` is the base seed: students use seeds ``seed, seed + 1, ...``, the teacher ``10000 + seed``.
    ``losses`` restricts the KD arms (default: all of ``LOSSES``). ``fresh`` ignores checkpoints.
    ``make_figures=False`` skips the PNGs (the JSON files are always written).
    """
    import torch
    from tqdm.auto import tqdm

    from kd2m_ref.torch import KD2MLoss

    from ..functions import LinearHead
    from . import parallel
    from .bounds import count_violations, median_bandwidth, theorem_checks
    from .data import load_data
    from .plots import save_all
    from .train import (
        LOSSES,
        TABLE1,
        Recipe,
        calibrate_weight,
        joint_beta,
        loss_params,
        new_model,
        train,
    )

    started = time.perf_counter()
    cfg = _settings(profile, dataset, {"epochs": epochs, "teacher_epochs": teacher_epochs, "width": width,
                                       "seeds": n_seeds})
    threads = threads if threads is not None else cfg["threads"]
    if threads:
        torch.set_num_threads(int(threads))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = parallel.init(device)  # under torchrun: join the process group, one device per rank
    save = write_json if parallel.is_main() else (lambda path, payload: path)  # rank 0 writes results
    recipe = Recipe(**cfg["recipe"])
    losses = list(losses or LOSSES)
    seeds = [seed + i for i in range(cfg["seeds"])]
    sweep_metric, sweep_rhos = cfg["sweep"]
    default_rho = 1.0
    out = Path(out) if out else RESULTS_DIR / profile / "resnet" / cfg["dataset"]
    default_out = RESULTS_DIR / profile / "resnet" / cfg["dataset"]
    ckpt_dir = (RESULTS_DIR / profile / "checkpoints" / "resnet" / cfg["dataset"] if out == default_out
                else out / "checkpoints")
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    (ckpt_dir / ".gitignore").write_text("# trained weights: regenerated by the command, never committed\n*\n")
    command = command or " ".join(sys.argv)

    data = load_data(cfg["dataset"], root=root, download=download, image_size=cfg["image_size"],
                     train_limit=cfg["train_limit"], test_limit=cfg["test_limit"])
    if device != "cpu":
        data = replace(data, x_train=data.x_train.to(device), x_test=data.x_test.to(device))
    base_key = {"data": data.describe(), "recipe": recipe.as_dict(), "profile": profile}

    def prov(wall):
        p = provenance(command=command, profile=profile, seed=seed, wall_time_s=wall)
        p["device"] = f"{device}, torch {torch.get_num_threads()} thread(s)" + (
            f", {torch.cuda.get_device_name()}" if device.startswith("cuda") else "") + (
            f", {parallel.world_size()} processes (torchrun, DDP)" if parallel.world_size() > 1 else "")
        return p

    def ckpt(name, key):
        path = ckpt_dir / f"{name}-{_hash(key)}.pt"
        if fresh and path.is_file() and parallel.is_main():
            path.unlink()
        parallel.barrier()
        return path

    # ---------------------------------------------------------------- teacher
    t0 = time.perf_counter()
    teacher_seed = 10_000 + seed
    teacher = new_model(recipe.teacher_depth, data, recipe, teacher_seed, device)
    tkey = {**base_key, "arm": "teacher", "seed": teacher_seed}
    tstate = train(teacher, data, recipe, seed=teacher_seed, epochs=recipe.teacher_epochs,
                   checkpoint=ckpt("teacher", tkey), device=device, desc="teacher (ResNet-34)", progress=progress)
    teacher.eval().requires_grad_(False)
    ut, zt, y = held_out(teacher, data, device)
    _, zt_train, yt_train = training_outputs(teacher, data, device)
    sigma = median_bandwidth(zt_train)
    # The kernel heads' training inputs: one fixed subsample of the training set for every run.
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

    teacher_record = {"arm": "teacher", "depth": recipe.teacher_depth, "seed": teacher_seed,
                      "feature_dim": teacher.feature_dim, "test_accuracy": float(np.mean(ut.argmax(1) == y)),
                      "history": tstate.history, "resumed_from_epoch": tstate.resumed_from_epoch,
                      "sigma_median_heuristic": sigma, "joint_beta": beta,
                      "kernel_fit_index": fit_index,
                      "projection": {"labels": y[:n_proj], "points": project(zt)}}
    save(out / "runs" / "teacher.json", {**teacher_record, "data": data.describe(), "recipe": recipe.as_dict(),
                                          "provenance": prov(time.perf_counter() - t0)})

    def evaluate(model, s):
        us, zs, ys = held_out(model, data, device)
        _, zs_fit, ys_fit = training_outputs(model, data, device, fit_index)
        integrity = held_out_integrity(data, (ut, zt, y), (us, zs, ys), teacher_fit_labels=yt_train,
                                       student_fit_labels=ys_fit, fit_index=fit_index)
        # A failed integrity check is counted; the rest is still computed (on the common rows) and recorded.
        n = min(len(ut), len(zt), len(y), len(us), len(zs))
        fit = (zt_fit, zs_fit, y_fit) if len(zs_fit) == len(zt_fit) else None
        checks = theorem_checks(zt[:n], zs[:n], ut[:n], us[:n], y[:n], head, sigma=sigma, subsample=cfg["subsample"],
                                repeats=cfg["repeats"], seed=s, fit=fit)
        checks["checks"]["held_out"] = integrity
        checks["violations"] = count_violations(checks["checks"])
        return float(np.mean(us[:n].argmax(1) == y[:n])), checks, project(zs)

    # ---------------------------------------------------------------- students
    arms = [(None, 0.0)] + [(m, default_rho) for m in losses]
    sweep = [(sweep_metric, r) for r in sweep_rhos if r != default_rho] if sweep_metric in losses else []
    plan = [(s, m, r) for s in seeds for (m, r) in arms] + [(seeds[0], m, r) for (m, r) in sweep]
    records, inits = [], {}
    bar = tqdm(plan, desc=f"verify resnet ({profile}, {cfg['dataset']})", unit="run",
               disable=not progress or not parallel.is_main())
    for s, metric, rho in bar:
        name = _arm_name(metric, rho, default_rho)
        bar.set_postfix(seed=s, arm=name, refresh=True)
        t0 = time.perf_counter()
        if s not in inits:  # the untrained student of this seed: Fig. 3 "before" and the bounds at init
            init = new_model(recipe.student_depth, data, recipe, s, device)
            acc, checks, proj = evaluate(init, s)
            inits[s] = {"arm": "init", "seed": s, "test_accuracy": acc, "theorem": checks,
                        "projection": {"points": proj}}
            save(out / "runs" / f"seed{s}" / "init.json", {**inits[s], "provenance": prov(time.perf_counter() - t0)})
        student = new_model(recipe.student_depth, data, recipe, s, device)
        params = loss_params(metric, beta) if metric else {}
        key = {**base_key, "arm": name, "metric": metric, "params": params, "rho": rho, "seed": s,
               "teacher": _hash(tkey)}
        loss = calibration = None
        path = ckpt(f"seed{s}-{name}", key)
        if metric is not None:
            loss = KD2MLoss(metric, weight=1.0, sync="global", **params)  # the global batch under torchrun
            if not path.is_file():
                calibration = calibrate_weight(student, teacher, loss, data, recipe, s, rho, device)
                loss.weight = calibration["weight"]
        state = train(student, data, recipe, seed=s, epochs=recipe.epochs, teacher=teacher if loss else None,
                      loss=loss, checkpoint=path, device=device, desc=f"seed {s} {name}", progress=progress,
                      calibration=calibration)
        acc, checks, proj = evaluate(student, s)
        record = {"arm": name, "metric": metric, "params": params, "rho": rho, "weight": state.weight,
                  "calibration": state.calibration, "seed": s, "depth": recipe.student_depth,
                  "test_accuracy": acc, "history": state.history, "resumed_from_epoch": state.resumed_from_epoch,
                  "theorem": checks, "projection": {"points": proj}}
        save(out / "runs" / f"seed{s}" / f"{name}.json",
             {**record, "provenance": prov(time.perf_counter() - t0)})
        records.append(record)
    bar.close()

    summary = _summary(profile, cfg, data, recipe, seeds, teacher_record, records, inits, losses, sweep_metric,
                       default_rho, TABLE1, device)
    summary["provenance"] = prov(time.perf_counter() - started)
    save(out / "summary.json", summary)
    parallel.barrier()
    summary = json.loads((out / "summary.json").read_text())
    if make_figures and parallel.is_main():
        save_all(summary, out)
    return summary



def _mean_std(values) -> dict:
    v = np.asarray(values, np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "values": v.tolist()}


def _bound_row(rec: dict) -> dict:
    th = rec["theorem"]
    sub, lce = th["subsamples"], th["constants"]["L_ce"]
    return {"arm": rec["arm"], "seed": rec["seed"], "gap_subsample": sub["gap"]["mean"],
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
            "kernel_head": {k: th["kernel_head"][k] for k in ("gap", "bound", "trivial", "mmd", "ratio", "vacuous")}
            if "kernel_head" in th else None,
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


def _summary(profile, cfg, data, recipe, seeds, teacher, records, inits, losses, sweep_metric, default_rho, table1,
             device) -> dict:
    main = [r for r in records if r["rho"] in (0.0, default_rho)]
    base = {r["seed"]: r["test_accuracy"] for r in main if r["metric"] is None}
    table = [{"arm": "teacher", "label": f"teacher (ResNet-{recipe.teacher_depth})", "metric": None,
              "accuracy": _mean_std([teacher["test_accuracy"]]), "in_table1": False}]
    for arm in ["baseline"] + list(losses):
        rows = [r for r in main if r["arm"] == arm]
        if not rows:
            continue
        table.append({
            "arm": arm, "label": "student, CE only" if arm == "baseline" else arm, "metric": rows[0]["metric"],
            "params": rows[0]["params"], "in_table1": arm in table1,
            "accuracy": _mean_std([r["test_accuracy"] for r in rows]),
            "delta_vs_baseline": _mean_std([r["test_accuracy"] - base[r["seed"]] for r in rows]),
            "weight": [r["weight"] for r in rows],
            "violations": sum(r["theorem"]["violations"] for r in rows)})
    s0 = seeds[0]
    sweep_runs = [r for r in records if r["seed"] == s0 and (r["metric"] is None or r["metric"] == sweep_metric)]
    sweep = {"metric": sweep_metric, "seed": s0,
             "runs": sorted(({"rho": r["rho"], "weight": r["weight"], "test_accuracy": r["test_accuracy"],
                              "history": r["history"]} for r in sweep_runs), key=lambda d: d["rho"])}
    bounds = [_bound_row(r) for r in records] + [_bound_row({**i, "rho": 0.0}) for i in inits.values()]
    margin_curves = {r["arm"]: {"gammas": r["theorem"]["margin"]["gammas"], "bound": r["theorem"]["margin"]["bound"],
                                "hybrid_error": r["theorem"]["margin"]["hybrid_error"]}
                     for r in list(inits.values())[:1] + [r for r in main if r["seed"] == s0]}
    projection = {"teacher": teacher["projection"], "init": inits[s0]["projection"]["points"],
                  "students": {r["arm"]: r["projection"]["points"] for r in main if r["seed"] == s0}}
    w = recipe.width
    in_paper = cfg["dataset"] in PAPER
    differences = [
        f"data: {data.name} ({len(data.y_train)} training / {len(data.y_test)} held-out images, "
        f"{data.in_channels}x{data.image_size}x{data.image_size})"
        + ("" if in_paper else "; the paper used SVHN, CIFAR-10 and CIFAR-100 (3x32x32), so its columns are "
                               "beside ours, not comparable to them"),
        f"width: multiplier {w:g}, {round(64 * w) * 8}-d features (paper: 512-d, width 1)",
        f"epochs: teacher {recipe.teacher_epochs}, students {recipe.epochs} (paper: 15)",
        "initialisation: from scratch, Kaiming normal (paper: ImageNet-pretrained torchvision weights)",
        "stem: CIFAR 3x3 stride 1, no max-pool (paper: ImageNet 7x7 stride 2 + max-pool on 32x32 inputs)",
        f"lambda: rho * CE0 / D0 per loss (rho = {default_rho:g}; calibrated at initialisation) "
        "(paper: 1e-4 for every loss)",
        f"optimiser: SGD lr {recipe.lr:g}, momentum {recipe.momentum:g}, weight decay {recipe.weight_decay:g}, "
        f"cosine per step, batch {recipe.batch_size}, identical for every arm including the baseline (paper: lr 1e-2, no weight "
        "decay, the baseline at a constant lr)",
        f"seeds: {len(seeds)} student seeds, mean +- sample std; one teacher (paper: seed 42, one run)",
    ]
    return {
        "experiment": "ResNet teacher -> student distillation; Theorem 3.1 and Lemma 1 on held-out data",
        "profile": profile, "dataset": data.describe(), "recipe": recipe.as_dict(), "seeds": seeds, "device": device,
        "settings": {"image_size": cfg["image_size"], "subsample": cfg["subsample"], "repeats": cfg["repeats"],
                     "default_rho": default_rho, "sweep": {"metric": sweep_metric, "rhos": list(cfg["sweep"][1])},
                     "lambda_rule": "lambda = rho * mean CE / mean D on the first calibration batches of epoch 0 at "
                                    "the student's initialisation (verification.resnet.train.calibrate_weight)",
                     "sigma_rule": "median pairwise distance of teacher training features (fixed before evaluation)",
                     "joint_beta_rule": "median squared distance of teacher training features",
                     "kernel_head_rule": f"kernel ridge regression (ridge 1e-3 * m) of one-hot labels on the "
                                         f"teacher's and on the student's training features of the same "
                                         f"{cfg['kernel_fit']} training inputs, Gaussian kernel of bandwidth "
                                         f"sqrt2 * sigma; loss sum_c (h_c - h*_c)^2 in the RKHS of bandwidth sigma"},
        "teacher": teacher,
        "table": table,
        "paper": {**PAPER, "column": cfg["dataset"] if in_paper else None},
        "differences": differences,
        "sweep": sweep,
        "bounds": bounds,
        "margin_curves": margin_curves,
        "projection": projection,
        "vacuity": _vacuity(bounds),
        "checks": {"must_hold_violations": sum(b["violations"] for b in bounds),
                   "held_out_failures": sum(not b["held_out_ok"] for b in bounds),
                   "kernel_head_violations": sum(b["kernel_head_holds"] is False for b in bounds),
                   "marginal_form_failures": sum(b["marginal_form_failures"] for b in bounds),
                   "marginal_form_trials": sum(b["marginal_form_of"] for b in bounds),
                   "runs": len(bounds)},
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
    table = {row["arm"]: row for row in result["table"]}
    base = table.get("baseline", {}).get("accuracy", {}).get("mean", float("nan"))
    kd = [(row["arm"], row["accuracy"]["mean"]) for row in result["table"] if row["arm"] not in ("teacher", "baseline")]
    best = max(kd, key=lambda t: t[1]) if kd else ("-", float("nan"))
    worst = min(kd, key=lambda t: t[1]) if kd else ("-", float("nan"))
    c = result["checks"]
    vac = result.get("vacuity", {})
    parts = []
    if "ce" in vac:
        v = vac["ce"]
        parts.append(f"CE {v['vacuous']}/{v['of']} (median bound {v['median_bound']:.3g} nats vs log C = "
                     f"{v['trivial']:.3g})")
    if "margin" in vac:
        v = vac["margin"]
        parts.append(f"error {v['vacuous']}/{v['of']} (median bound {v['median_bound']:.3g} vs 1)")
    if "kernel_head" in vac:
        v = vac["kernel_head"]
        parts.append(f"kernel head {v['vacuous']}/{v['of']} (median MMD_k {v['median_mmd']:.3g}, "
                     f"gap/bound {v['median_gap_over_bound']:.3g})")
    held = c.get("held_out_failures", 0)
    return (f"verify resnet ({result['profile']}, {result['dataset']['name']}, {len(result['seeds'])} seed(s)): "
            f"teacher {100 * table['teacher']['accuracy']['mean']:.2f} %, baseline student {100 * base:.2f} %, "
            f"best KD {best[0]} {100 * best[1]:.2f} %, worst {worst[0]} {100 * worst[1]:.2f} %; "
            f"{c['must_hold_violations']} violations of the must-hold checks over {c['runs']} runs"
            + (f" ({held} with non-held-out outputs)" if held else "")
            + f"; marginal form failed on {c['marginal_form_failures']} of {c['marginal_form_trials']} subsamples; "
            + (f"vacuous bounds: {', '.join(parts)}; " if parts else "")
            + f"{result['provenance']['wall_time_s']} s")
