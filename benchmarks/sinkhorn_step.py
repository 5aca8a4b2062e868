"""Forward + backward time of the torch Sinkhorn divergence on the benchmark features.

``PYTHONPATH=. python benchmarks/sinkhorn_step.py`` from the repository root: float32, epsilon =
``benchmarks.impls.EPSILON``, 2 threads, median of 5 calls per size. To time another commit, point
``PYTHONPATH`` at a worktree of it instead (``git worktree add /tmp/old <commit>``).
"""

from __future__ import annotations

import statistics
import time
import warnings

import torch

import kd2m_ref.torch as T
from benchmarks.impls import EPSILON, features


def main() -> None:
    torch.set_num_threads(2)
    warnings.simplefilter("ignore")
    print(f"kd2m_ref from {T.__file__}")
    for n, d in [(64, 64), (256, 64), (1024, 64), (256, 512)]:
        xs, xt = features(n, d, torch.float32, "cpu", seed=0)
        xs.requires_grad_(True)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            value = T.sinkhorn_divergence(xs, xt, epsilon=EPSILON)
            value.backward()
            times.append(time.perf_counter() - start)
        print(f"{n} x {d}: {statistics.median(times) * 1e3:.1f} ms, value {float(value):.9g}")


if __name__ == "__main__":
    main()
