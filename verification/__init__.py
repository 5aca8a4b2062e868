"""Experiments that check Lemma 1 and Theorem 3.1 of KD2M (THEORY.md §2-§4).

``verification.exact``: exact quantities on discrete measures and the inequality chain C1-C9, E1-E4.
``verification.stats``: confidence bounds (Hoeffding, empirical Bernstein, W1 UCB/LCB, MMD LCB).
``verification.closed_forms``: Gaussian closed forms of experiment B1.
``verification.run_exact`` / ``verification.run_synthetic``: the ``kd2m-ref verify exact|synthetic``
commands, writing JSON and figures to ``verification/results/<profile>/`` (DESIGN.md §7).

This package lives at the repository root, beside ``kd2m_ref`` and not inside it (DESIGN.md §2): it
is the project's evidence, built on the package's reference metrics; ``kd2m_ref`` never imports it
except lazily from the ``verify`` subcommand.
"""

from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
