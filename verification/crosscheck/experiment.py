"""``kd2m-ref verify crosscheck``: the cross-check kit (:func:`kd2m_ref.testing.check`) on every mutant
(deliberately wrong implementation, :mod:`.mutants`) and every gallery entry (independently written
correct implementation, :mod:`.gallery`, in float64 and float32).

Must hold (counted by :func:`violations`): every mutant is flagged and every gallery entry conforms.
Whether a flagged mutant also gets its expected diagnosis is reported as data. Output:
``crosscheck.json`` and ``crosscheck.png`` in the results folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .. import RESULTS_DIR
from ..results import Timer, figure_setup, provenance, write_json

#: Hypothesis examples per implementation (the checker's own test uses 25).
PROFILES = {"smoke": 10, "quick": 15, "full": 25}


def run(profile: str = "quick", seed: int = 0, out: Path | None = None, command: str = "") -> dict:
    """Check every mutant and gallery entry with ``PROFILES[profile]`` examples each (the checker's
    examples are derandomized: ``seed`` is recorded, not used)."""
    from tqdm import tqdm

    from .gallery import GALLERY
    from .mutants import CASES, detection_table, evaluate, evaluate_gallery

    examples = PROFILES[profile]
    out = Path(out) if out else RESULTS_DIR / profile
    jobs = [(evaluate, c) for c in CASES] + [(evaluate_gallery, e) for e in GALLERY]
    with Timer() as timer:
        rows = [fn(item, examples) for fn, item in tqdm(jobs, desc=f"verify crosscheck ({profile})", unit="impl")]
    for row in rows:
        row.pop("report", None)  # the full text of each report is long; the diagnosis stays
    payload = {"experiment": "the cross-check kit on wrong and correct implementations",
               "examples_per_implementation": examples, "table": detection_table(rows), "cases": rows}
    figures(payload, out)
    payload["provenance"] = provenance(command=command or " ".join(sys.argv), profile=profile, seed=seed,
                                       wall_time_s=timer.seconds)
    write_json(out / "crosscheck.json", payload)
    return payload


def violations(payload: dict) -> int:
    """Mutants not flagged plus gallery entries flagged or not checkable."""
    t = payload["table"]
    return (t["mutants"] - t["mutants_caught"]) + (t["correct"] - t["correct_passed"])


def figure(payload: dict):
    """Seconds to the verdict of every implementation, one row per metric key: wrong implementations
    (mutants) flagged as squares (hollow: flagged without the expected diagnosis), correct ones that
    conform as circles, and misses or false alarms as large red triangles; the book's style
    (:mod:`verification.plotting`). Returns the figure."""
    from ..plotting import COLORS, WIDTH, use_style

    plt = figure_setup()
    use_style()
    cases = payload["cases"]
    metrics = sorted({r["metric"] for r in cases})
    row = {m: i for i, m in enumerate(metrics)}
    fig, ax = plt.subplots(figsize=(WIDTH, 0.3 * len(metrics) + 1.8), layout="constrained")
    kinds = (("wrong implementation, flagged",
              lambda r: not r["correct"] and r["flagged"] and r["diagnosed"] is not False,
              {"marker": "s", "color": COLORS[2]}, -0.15),
             ("wrong, flagged without the expected diagnosis",
              lambda r: not r["correct"] and r["flagged"] and r["diagnosed"] is False,
              {"marker": "s", "facecolors": "none", "edgecolors": COLORS[2]}, -0.15),
             ("correct implementation, conforms", lambda r: r["correct"] and not r["flagged"],
              {"marker": "o", "color": COLORS[0]}, 0.15),
             ("a miss or a false alarm", lambda r: r["correct"] == r["flagged"],
              {"marker": "^", "color": "#D55E00", "s": 90}, 0.0))
    for label, pick, style, dy in kinds:
        sel = [r for r in cases if pick(r)]
        style = {"s": 36, **style}
        ax.scatter([max(r["seconds"], 1e-2) for r in sel], [row[r["metric"]] + dy for r in sel], label=label,
                   linewidths=1.2, **style)
    ax.set_yticks(range(len(metrics)), metrics)
    ax.set_ylim(len(metrics) - 0.5, -0.5)
    ax.set_xscale("log")
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("seconds to the verdict (log scale)")
    t = payload["table"]
    ax.set_title(f"{t['mutants_caught']} of {t['mutants']} wrong implementations flagged,\n"
                 f"{t['correct_passed']} of {t['correct']} correct ones conform")
    fig.legend(loc="outside lower center", ncol=2)
    return fig


def figures(payload: dict, out: Path) -> Path:
    """``crosscheck.png``: :func:`figure`."""
    import matplotlib.pyplot as plt

    fig = figure(payload)
    path = Path(out) / "crosscheck.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def summary(payload: dict) -> str:
    t = payload["table"]
    return (f"verify crosscheck ({payload['provenance']['profile']}, {payload['examples_per_implementation']} "
            f"examples each): {t['mutants_caught']} of {t['mutants']} mutants flagged, {t['mutants_diagnosed']} of "
            f"{t['mutants_with_expected_diagnosis']} with the expected diagnosis; {t['correct_passed']} of "
            f"{t['correct']} correct implementations conform; {payload['provenance']['wall_time_s']} s")
