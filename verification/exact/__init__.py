"""``kd2m-ref verify exact``: the inequality chain on random exact discrete measures
(:mod:`.chain`: instances, terms and checks; :mod:`.experiment`: the run, its summary and figure)."""

from .experiment import PROFILES, figures, run, summary, violations

__all__ = ["PROFILES", "figures", "run", "summary", "violations"]
