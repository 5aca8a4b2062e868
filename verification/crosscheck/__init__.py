"""``kd2m-ref verify crosscheck``: the cross-check kit against deliberately wrong implementations
(:mod:`.mutants`) and independently written correct ones (:mod:`.gallery`)."""

from .experiment import PROFILES, figures, run, summary, violations

__all__ = ["PROFILES", "figures", "run", "summary", "violations"]
