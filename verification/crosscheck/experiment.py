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


def figures(payload: dict, out: Path) -> Path:
    """``crosscheck.png``: seconds to a verdict per implementation, coloured by the verdict."""
    plt = figure_setup()
    rows = sorted(payload["cases"], key=lambda r: (r["correct"], r["metric"], r["name"]))
    colour = {(False, True): "tab:green", (True, False): "tab:blue"}
    fig, ax = plt.subplots(figsize=(8, 0.16 * len(rows) + 1.2))
    ax.barh(range(len(rows)), [r["seconds"] for r in rows],
            color=[colour.get((r["correct"], r["flagged"]), "tab:red") for r in rows])
    ax.set_yticks(range(len(rows)), [f"{r['name']} ({r['metric']})" for r in rows], fontsize=5)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("seconds to the verdict")
    ax.set_title("green: wrong implementation flagged; blue: correct one conforms; red: a miss or a false alarm",
                 fontsize=8)
    fig.tight_layout()
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
