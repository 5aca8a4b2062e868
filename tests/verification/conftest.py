"""The ``verification`` package lives at the repository root (not installed): make it importable
whatever the working directory and however pytest was started."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
