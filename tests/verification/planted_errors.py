"""Planted errors in the verification: each is a wrong version of one function or constant, applied in
memory (monkeypatching, no file edits), with the checks that must catch it. ``test_planted_errors.py``
applies each in turn and asserts that every check listed for it fails; the book's verification
chapter prints this list as "what the checks can catch".

A check is a zero-argument-plus-``tmp_path`` callable that passes on correct code: a smoke run of
``kd2m-ref verify <experiment>`` that must exit 0, or a fast test of the suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

# ----------------------------------------------------------------------------- checks


def verify_smoke(experiment: str, *extra: str) -> Callable:
    def run(tmp_path):
        from kd2m_ref.cli import main

        status = main(["verify", experiment, "--profile", "smoke", "--out", str(tmp_path / experiment), *extra])
        assert status == 0, f"kd2m-ref verify {experiment} --profile smoke exited {status}"

    run.label = f"kd2m-ref verify {experiment} --profile smoke exits 1"
    return run


def fast_test(module: str, name: str) -> Callable:
    def run(tmp_path):
        import importlib
        import inspect

        fn = getattr(importlib.import_module(module), name)
        fn(*[tmp_path for _ in inspect.signature(fn).parameters])

    run.label = f"{module}.py::{name} fails"
    return run


VERIFY_EXACT = verify_smoke("exact")
VERIFY_SYNTHETIC = verify_smoke("synthetic")
VERIFY_RESNET = verify_smoke("resnet", "--losses", "wasserstein", "--no-progress")

# ----------------------------------------------------------------------------- the planted errors


def _everywhere(monkeypatch, module: str, name: str, value) -> None:
    """Replace ``module.name`` and every binding of the same object in a loaded module (a from-import,
    in the verification or in a test module, binds a second name); modules imported later bind the
    replacement."""
    import importlib
    import sys

    original = getattr(importlib.import_module(module), name)
    for loaded in list(sys.modules.values()):
        if getattr(loaded, name, None) is original:
            monkeypatch.setattr(loaded, name, value)


def lipschitz_without_sqrt2(monkeypatch):
    from verification.functions import LinearHead

    monkeypatch.setattr(LinearHead, "lipschitz", property(lambda self: float(np.linalg.norm(self.weight, 2))))


def verdict_swapped(monkeypatch):
    def verdict(gap_upper, gap_lower, bound_lower, bound_upper):
        if gap_upper >= bound_lower:  # the planted error: >= for <=
            return "holds"
        if gap_lower > bound_upper:
            return "violated"
        return "inconclusive"

    _everywhere(monkeypatch, "verification.stats", "verdict", verdict)


def _split_predict(monkeypatch, teacher_only: bool):
    from verification.resnet import train

    real = train.predict

    def predict(model, data, device="cpu", batch_size=500, split="test"):
        if split == "test" and (not teacher_only or model.depth == 34):
            split = "train"
        return real(model, data, device, batch_size, split)

    monkeypatch.setattr(train, "predict", predict)


def held_out_risks_on_training_split(monkeypatch):
    _split_predict(monkeypatch, teacher_only=False)


def teacher_training_features_in_held_out_term(monkeypatch):
    _split_predict(monkeypatch, teacher_only=True)


def labels_ignored(monkeypatch):
    from verification import distances

    real = distances.class_conditional_w1
    _everywhere(monkeypatch, "verification.distances", "class_conditional_w1",
                lambda zs, zt, y, ground, w=None: real(zs, zt, np.zeros(len(y), int), ground, w))


def w2_squared_for_w1(monkeypatch):
    from verification import distances

    _everywhere(monkeypatch, "verification.distances", "euclidean_distance", distances.squared_euclidean_distance)


def mmd_squared_for_mmd(monkeypatch):
    from verification import distances

    real = distances.mmd
    _everywhere(monkeypatch, "verification.distances", "mmd", lambda *a, **k: real(*a, **k) ** 2)


def conditional_bound_halved(monkeypatch):
    from verification import distances

    real = distances.class_conditional_w1
    _everywhere(monkeypatch, "verification.distances", "class_conditional_w1", lambda *a, **k: 0.5 * real(*a, **k))


def weights_ignored(monkeypatch):
    from verification import distances

    real = distances.ot_cost
    _everywhere(monkeypatch, "verification.distances", "ot_cost", lambda cost, a=None, b=None: real(cost))


def mean_max_swapped(monkeypatch):
    from verification.exact import chain

    real = chain.terms

    def terms(inst):
        t = real(inst)
        t["mean_dk"], t["max_dk"] = t["max_dk"], t["mean_dk"]
        return t

    monkeypatch.setattr(chain, "terms", terms)


def confidence_level_mixed_up(monkeypatch):
    from verification import stats

    for name in ("hoeffding", "empirical_bernstein"):
        real = getattr(stats, name)
        _everywhere(monkeypatch, "verification.stats", name,
                    lambda values, value_range, alpha, _f=real: _f(values, value_range, 1 - alpha))


def gaussian_mmd_halved(monkeypatch):
    from verification.synthetic import closed_forms

    real = closed_forms.gaussian_mmd
    _everywhere(monkeypatch, "verification.synthetic.closed_forms", "gaussian_mmd",
                lambda *a, **k: 0.5 * real(*a, **k))


def sandwich_upper_end_halved(monkeypatch):
    from verification.synthetic import closed_forms

    real = closed_forms.euclidean_sandwich

    def sandwich(*args):
        out = real(*args)
        out["coupling_rms"] = 0.5 * out["coupling_rms"]
        return out

    _everywhere(monkeypatch, "verification.synthetic.closed_forms", "euclidean_sandwich", sandwich)


def selection_on_test_accuracy(monkeypatch):
    from verification.resnet import analysis

    real = analysis.select_rho
    _everywhere(monkeypatch, "verification.resnet.analysis", "select_rho",
                lambda records, losses, rhos: real([{**r, "val_accuracy": r["test_accuracy"]} for r in records],
                                                   losses, rhos))


def unpaired_comparison(monkeypatch):
    from scipy.stats import ttest_ind

    from verification import stats

    real = stats.paired_test

    def welch(a, b, alpha=0.05):
        out = real(a, b, alpha)
        out["p"] = float(ttest_ind(a, b, equal_var=False).pvalue)  # the seeds' pairing thrown away
        return out

    _everywhere(monkeypatch, "verification.stats", "paired_test", welch)


def multiple_comparisons_ignored(monkeypatch):
    _everywhere(monkeypatch, "verification.stats", "holm",
                lambda p, alpha=0.05: {"adjusted": list(p), "reject": [q <= alpha for q in p]})


@dataclass(frozen=True)
class Planted:
    name: str
    where: str
    error: str
    apply: Callable
    caught_by: tuple[Callable, ...]


PLANTED = [
    Planted("lipschitz_without_sqrt2", "verification/functions.py (LinearHead.lipschitz: exact chain, ResNet L_CE)",
            "the CE Lipschitz constant ||W||_op instead of sqrt2 ||W||_op", lipschitz_without_sqrt2,
            (VERIFY_EXACT, fast_test("test_resnet", "test_ce_bound_is_attained_on_a_saturated_head"))),
    Planted("verdict_swapped", "verification/stats.py (verdict)",
            "'holds' when UCB(|gap|) >= LCB(bound): the inequality reversed", verdict_swapped,
            (VERIFY_SYNTHETIC, fast_test("test_quantities", "test_verdict_rule"))),
    Planted("held_out_risks_on_training_split", "verification/resnet/train.py (predict)",
            "every held-out quantity computed on the training split", held_out_risks_on_training_split,
            (VERIFY_RESNET,)),
    Planted("teacher_training_features_in_held_out_term", "verification/resnet/train.py (predict)",
            "the teacher's training-split features in the held-out terms", teacher_training_features_in_held_out_term,
            (VERIFY_RESNET,)),
    Planted("labels_ignored", "verification/distances.py (class_conditional_w1)",
            "the class-conditional W1 computed with one class (labels ignored)", labels_ignored, (VERIFY_EXACT,)),
    Planted("w2_squared_for_w1", "verification/distances.py (euclidean_distance)",
            "squared distances where W1 needs distances (W2^2 for W1)", w2_squared_for_w1, (VERIFY_EXACT,)),
    Planted("mmd_squared_for_mmd", "verification/distances.py (mmd)", "MMD^2 where the bound needs MMD",
            mmd_squared_for_mmd, (VERIFY_EXACT,)),
    Planted("conditional_bound_halved", "verification/distances.py (class_conditional_w1)",
            "the class-conditional term halved", conditional_bound_halved, (VERIFY_EXACT,)),
    Planted("weights_ignored", "verification/distances.py (ot_cost)",
            "the measures' weights ignored (uniform weights in every OT problem)", weights_ignored, (VERIFY_EXACT,)),
    Planted("mean_max_swapped", "verification/exact/chain.py (terms)",
            "the mean and the max of the coupling term swapped", mean_max_swapped, (VERIFY_EXACT,)),
    Planted("confidence_level_mixed_up", "verification/stats.py (hoeffding, empirical_bernstein)",
            "intervals at level alpha instead of 1 - alpha", confidence_level_mixed_up,
            (fast_test("test_synthetic", "test_interval_coverage_is_at_least_the_level"),)),
    Planted("gaussian_mmd_halved", "verification/synthetic/closed_forms.py (gaussian_mmd)",
            "the closed-form MMD of B1 halved", gaussian_mmd_halved, (VERIFY_SYNTHETIC,)),
    Planted("sandwich_upper_end_halved", "verification/synthetic/closed_forms.py (euclidean_sandwich)",
            "the coupling end of the Euclidean sandwich halved", sandwich_upper_end_halved, (VERIFY_SYNTHETIC,)),
    Planted("selection_on_test_accuracy", "verification/resnet/analysis.py (select_rho)",
            "rho chosen on test accuracy instead of validation accuracy", selection_on_test_accuracy,
            (fast_test("test_resnet_analysis", "test_selection_reads_validation_and_breaks_ties_towards_the_smaller_rho"),)),
    Planted("unpaired_comparison", "verification/stats.py (paired_test)",
            "the difference to the baseline tested as two independent samples (pairing by seed ignored)",
            unpaired_comparison,
            (fast_test("test_resnet_analysis", "test_compare_gives_helps_hurts_and_indistinguishable_with_holm"),
             fast_test("test_stats_seeds", "test_paired_test_matches_scipy"))),
    Planted("multiple_comparisons_ignored", "verification/stats.py (holm)",
            "eight losses tested against the baseline without a multiple-comparison correction",
            multiple_comparisons_ignored,
            (fast_test("test_resnet_analysis", "test_holm_turns_a_lone_marginal_difference_into_indistinguishable"),)),
]
assert len({p.name for p in PLANTED}) == len(PLANTED)
