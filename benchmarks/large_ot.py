"""Time and peak memory of the reference's exact OT on one large weighted problem.

``python -m benchmarks.large_ot N M [D]``: N x M points in dimension D (default 16), source N(0, I),
target N(0.3, I), weights uniform in [0.1, 1] (seed 0). Prints the wall time of
``kd2m_ref.reference.wasserstein`` and the process's peak RSS.
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from kd2m_ref import reference as R


def main(argv: list[str]) -> None:
    n, m = int(argv[0]), int(argv[1])
    d = int(argv[2]) if len(argv) > 2 else 16
    rng = np.random.default_rng(0)
    xs, xt = rng.normal(size=(n, d)), rng.normal(size=(m, d)) + 0.3
    a, b = rng.uniform(0.1, 1, n), rng.uniform(0.1, 1, m)
    start = time.perf_counter()
    value = R.wasserstein(xs, xt, a=a, b=b)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{n} x {m}, d = {d}, weighted: {seconds:.2f} s, W2^2 = {value:.12g}, peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main(sys.argv[1:])
