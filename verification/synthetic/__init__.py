"""``kd2m-ref verify synthetic``: populations of random instances B1 and B2, the plug-in bias, label
scrambles B4 and training B3, with family-wise confidence (:mod:`.closed_forms`, :mod:`.population`,
:mod:`.claims`, :mod:`.training`, :mod:`.plots`, :mod:`.experiment`)."""

from .experiment import PROFILES, run, summary, violations
from .plots import figures

__all__ = ["PROFILES", "figures", "run", "summary", "violations"]
