r"""Sample-based terms of the chain with confidence intervals, shared by experiments B1, B2 and B4.

Inputs are *paired* samples: rows ``zs[i], zt[i]`` are the student and teacher features of the
same input :math:`x_i\sim P`. Every interval returned here is one statement of the family: it is
wrong (on either side) with probability at most the ``alpha`` passed in, so a two-sided interval
built from two one-sided bounds gives each side ``alpha / 2``.
"""

from __future__ import annotations

import numpy as np

from ..distances import SQRT2, kernel_distance, mmd, ot_cost, paired_kernel_distance
from ..stats import Interval, hoeffding, mmd_lower, mmd_upper, w1_lower, w1_upper


def kernel_terms(zs, zt, sigma: float, alpha: float, rng: np.random.Generator) -> dict[str, Interval]:
    r"""Intervals of the kernel terms, each at ``alpha``:

    * ``mmd``: the V-statistic :math:`\widehat{\mathrm{MMD}}_k` (not squared), McDiarmid bounds
      (:func:`stats.mmd_lower` / :func:`stats.mmd_upper`, each side at ``alpha / 2``);
    * ``w1_dk``: plug-in :math:`W_1^{d_k}`; UCB by McDiarmid, LCB from dual potentials fitted on one
      random half and evaluated on the other (each side at ``alpha / 2``);
    * ``mean_dk``: :math:`\mathbb E\,d_k(\phi_S,\phi_T)`, Hoeffding (values in :math:`[0,\sqrt2]`).
    """
    n = len(zs)
    mmd_hat = mmd(zs, zt, sigma)
    plug = ot_cost(kernel_distance(zs, zt, sigma))
    perm = rng.permutation(n)
    a, b = perm[: n // 2], perm[n // 2:]
    lcb = w1_lower(zs[a], zt[a], zs[b], zt[b], lambda x, y: kernel_distance(x, y, sigma), SQRT2, alpha / 2)
    return {
        "mmd": Interval(mmd_hat, max(mmd_lower(mmd_hat, n, alpha / 2), 0.0), mmd_upper(mmd_hat, n, alpha / 2)),
        "w1_dk": Interval(plug, max(lcb.lower, 0.0), w1_upper(plug, SQRT2, n, alpha / 2)),
        "mean_dk": hoeffding(paired_kernel_distance(zs, zt, sigma), SQRT2, alpha),
    }
