"""``kd2m-ref verify distributed_bias``: the local-batch bias of a distance under data parallelism."""

from .experiment import PROFILES, figures, run, summary, violations

__all__ = ["PROFILES", "figures", "run", "summary", "violations"]
