"""Do two runs of ``kd2m-ref bench`` reach the same verdicts?

    python -m benchmarks.agree benchmarks/results/quick-cpu/bench.json OTHER/bench.json

Prints each target's verdict in both runs and exits 1 when a target is met in one run and missed in
the other (a change to or from "unresolved" is printed, not counted: it is what the intervals are for).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def conflicts(first: dict, second: dict) -> list[str]:
    """Targets met in one run and missed in the other (a target absent from one run is a conflict too)."""
    a = {t["target"]: t["verdict"] for t in first["targets"]}
    b = {t["target"]: t["verdict"] for t in second["targets"]}
    return [name for name in dict.fromkeys([*a, *b])
            if name not in a or name not in b or {a[name], b[name]} == {"met", "missed"}]


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    if len(paths) != 2:
        print("usage: python -m benchmarks.agree FIRST/bench.json SECOND/bench.json", file=sys.stderr)
        return 2
    first, second = (json.loads(p.read_text()) for p in paths)
    b = {t["target"]: t["verdict"] for t in second["targets"]}
    for t in first["targets"]:
        print(f"{t['verdict']:>10s} {b.get(t['target'], 'absent'):>10s}  {t['target']}")
    bad = conflicts(first, second)
    print(f"{len(bad)} target(s) met in one run and missed in the other" + "".join(f"\n  {name}" for name in bad))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
