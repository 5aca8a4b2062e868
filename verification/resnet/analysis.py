r"""What the ResNet runs answer: the teacher gate, rho selection on validation data, paired comparisons
with the baseline, rank correlations, and the paper's Table 1 beside ours.

Pure functions of the run records written by :func:`verification.resnet.experiment.run` (each record
has ``arm``, ``metric``, ``rho``, ``seed``, ``phase``, ``val_accuracy``, ``test_accuracy`` and, for a
distilled student, ``own_distance``), so each is tested on hand-made records.

* **Gate** (:func:`teacher_gate`): the teacher must beat the CE-only student on *validation* data by
  ``margin`` before a distilled student trains; otherwise nothing is concluded.
* **Selection** (:func:`select_rho`): per loss, the rho of the grid with the highest mean validation
  accuracy over the selection seeds (ties: the smaller rho). :func:`selection_check` recomputes it
  from the records (a must-hold check: a selection that read test accuracy would disagree).
* **Comparison** (:func:`compare`): per loss, at its selected rho, on the evaluation seeds (disjoint
  from the selection seeds): test accuracy with a 95 % t-interval; the paired difference to the
  baseline of the same seed (same initialisation, batches and augmentation) with a paired t-test;
  Holm's correction over the losses; a verdict ``helps`` / ``hurts`` / ``indistinguishable``.
* **Correlations** (:func:`correlations`): Spearman's rho, with a Fisher-z interval, between the
  final held-out distance and the held-out error: per loss (its own D, across rho and seeds) and
  pooled over every student run (the Theorem 3.1 terms, which every run shares).
"""

from __future__ import annotations

import numpy as np

from ..stats import holm, paired_test, spearman, t_interval

#: Level of every interval and test here (intervals at 1 - ALPHA; Holm at family-wise ALPHA).
ALPHA = 0.05
#: Fewest runs for a rank correlation (the Fisher-z interval is an approximation for small n).
MIN_RUNS = 10

#: The paper's Table 1 (test accuracy, %). ``paper_row`` names a row by its family, (E) empirical or (G)
#: Gaussian, its position in the family and its citations; ``arm``, the registry key of the row's
#: distance, is *our inference* (how it was inferred: ``mapping``).
PAPER = {
    "source": "KD2M paper (Montesuma, GSI 2025, arXiv:2504.01757), Table 1: test accuracy (%)",
    "columns": ["svhn", "cifar10", "cifar100", "avg"],
    "rows": [
        {"paper_row": "Student (ResNet18)", "arm": "baseline", "values": [93.10, 85.11, 56.66, 78.29]},
        {"paper_row": "Teacher (ResNet34)", "arm": "teacher", "values": [94.41, 86.98, 62.21, 81.20]},
        {"paper_row": "(E) [1, 9]", "arm": "wasserstein", "values": [94.00, 86.45, 61.07, 80.51]},
        {"paper_row": "(E), 2nd row", "arm": "class_conditional_wasserstein", "values": [94.06, 86.54, 61.47, 80.69]},
        {"paper_row": "(E), 3rd row", "arm": "joint_wasserstein", "values": [94.00, 86.60, 61.07, 80.55]},
        {"paper_row": "(G) [10]", "arm": "gaussian_wasserstein", "values": [93.94, 86.63, 60.68, 80.41]},
        {"paper_row": "(G), 2nd row", "arm": "gaussian_kl", "values": [93.95, 86.25, 61.43, 80.54]},
        {"paper_row": "(G), 3rd row", "arm": "class_conditional_gaussian_wasserstein",
         "values": [94.05, 86.44, 60.66, 80.38]},
    ],
    "mapping": "our inference: within each family the rows are taken in the order in which the paper's Section 2 "
               "introduces the distances (empirical: Wasserstein, class-conditional, joint; Gaussian: Wasserstein, "
               "KL, class-conditional Gaussians); the citations on the first row of each family agree with it ([1, 9]: "
               "prior work with the empirical Wasserstein distance; [10]: prior work with the Gaussian Wasserstein "
               "distance)",
    "recipe": "torchvision ResNet-34 -> ResNet-18, ImageNet-pretrained, ImageNet stem on 32x32 inputs, 512-d "
              "features, 15 epochs, SGD lr 1e-2 momentum 0.9, no weight decay, cosine schedule (distilled students "
              "only: the baseline ran at a constant lr), batch 128, crop + flip, lambda = 1e-4, seed 42, one run",
}


def teacher_gate(teacher_val: float, baseline_val, margin: float | None) -> dict:
    """The teacher's validation accuracy minus the mean over seeds of the CE-only student's; the gate
    holds when that is at least ``margin`` (``None``: reported, not applied)."""
    base = float(np.mean(baseline_val))
    gap = float(teacher_val) - base
    return {"teacher_val": float(teacher_val), "baseline_val_mean": base, "gap": gap, "margin": margin,
            "applied": margin is not None, "holds": None if margin is None else bool(gap >= margin)}


def _val_table(records, losses, rhos) -> dict:
    table = {}
    for m in losses:
        per = {r: [x["val_accuracy"] for x in records if x["metric"] == m and x["rho"] == r] for r in rhos}
        table[m] = {f"{r:g}": float(np.mean(v)) for r, v in per.items() if v}
    return table


def select_rho(records, losses, rhos) -> dict:
    """Per loss, the rho with the highest mean validation accuracy over the selection runs (ties: the
    smaller rho), with the validation means of the whole grid."""
    table = _val_table([r for r in records if r["phase"] == "selection"], losses, rhos)
    out = {}
    for m, means in table.items():
        if means:
            best = max(sorted(means, key=float), key=lambda k: means[k])  # max keeps the first of ties
            out[m] = {"rho": float(best), "val_mean": means}
    return out


def selection_check(selection: dict, records, rhos) -> dict:
    """Must-hold: every selected rho has the highest mean validation accuracy of its loss's selection
    runs, and no smaller rho ties with it (recomputed here from the records, independently of
    :func:`select_rho`: a selection that read test accuracy disagrees)."""
    problems = []
    for m, chosen in selection.items():
        runs = [r for r in records if r["phase"] == "selection" and r["metric"] == m]
        means = {r: np.mean([x["val_accuracy"] for x in runs if x["rho"] == r]) for r in rhos
                 if any(x["rho"] == r for x in runs)}
        best = max(means.values(), default=None)
        if chosen["rho"] not in means or means[chosen["rho"]] < best or \
                any(r < chosen["rho"] and v == best for r, v in means.items()):
            problems.append(f"{m}: selected rho {chosen['rho']:g}, validation means {means}")
    return {"holds": not problems, "must_hold": True, "problems": problems}


def compare(records, losses, selection: dict, alpha: float = ALPHA) -> dict:
    """Test accuracy per arm (t-interval over the evaluation seeds) and, per loss, the paired
    difference to the baseline with a paired t-test, Holm-corrected over the losses."""
    ev = [r for r in records if r["phase"] == "evaluation"]
    base = {r["seed"]: r["test_accuracy"] for r in ev if r["metric"] is None}
    seeds = sorted(base)
    arms = {"baseline": [base[s] for s in seeds]}
    rows, pvals = [], []
    for m in losses:
        if m not in selection:
            continue
        acc = {r["seed"]: r["test_accuracy"] for r in ev if r["metric"] == m and r["rho"] == selection[m]["rho"]}
        common = [s for s in seeds if s in acc]
        if len(common) < 2:
            continue
        a, b = [acc[s] for s in common], [base[s] for s in common]
        arms[m] = a
        test = paired_test(a, b, alpha)
        rows.append({"arm": m, "rho": selection[m]["rho"], "seeds": common, "difference": test})
        pvals.append(test["p"])
    adjusted = holm(pvals, alpha)
    for row, p_adj, rej in zip(rows, adjusted["adjusted"], adjusted["reject"]):
        d = row["difference"]["mean"]
        row["p_holm"] = p_adj
        row["verdict"] = ("helps" if d > 0 else "hurts") if rej else "indistinguishable"
    accuracy = {k: {**t_interval(v, alpha).as_dict(), "values": list(v)} for k, v in arms.items()}
    return {"alpha": alpha, "test": "paired Student t over seeds, Holm-corrected over the losses",
            "accuracy": accuracy, "differences": rows, "seeds": seeds}


def correlations(records, bound_rows, losses, alpha: float = ALPHA) -> dict:
    """Spearman's rho between the held-out error and (a) each loss's own held-out distance D(student,
    teacher) across its runs (every rho, every seed), (b) each Theorem 3.1 term pooled over every
    trained student (baseline included)."""
    own = {}
    for m in losses:
        runs = [r for r in records if r["metric"] == m and r.get("own_distance") is not None]
        if len(runs) >= MIN_RUNS:
            own[m] = spearman([r["own_distance"] for r in runs], [1 - r["test_accuracy"] for r in runs], alpha)
    trained = [b for b in bound_rows if b["arm"] != "init"]
    terms = {}
    for key in ("w1_marginal", "w1_conditional", "coupling_mean", "mmd", "kernel_head_bound", "margin_bound"):
        pts = [(b[key], b["test_error"]) for b in trained if b.get(key) is not None]
        if len(pts) >= MIN_RUNS:
            x, y = zip(*pts)
            terms[key] = spearman(x, y, alpha)
    return {"alpha": alpha, "interval": "Fisher z with variance 1.06 / (n - 3)", "own_distance": own,
            "bound_terms": terms,
            "caveat": "runs share one teacher, one data split and one test set, so they are not independent "
                      "draws: read the intervals as descriptive"}
