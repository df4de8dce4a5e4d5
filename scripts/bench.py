#!/usr/bin/env python3
"""The benchmark's command: ``python scripts/bench.py --out DIR`` (``--help`` for the rest).

The benchmark itself is the package beside this file, scripts/bench/: its ``__init__.py`` says
what is measured and how, and which module holds what.
"""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
sys.path[:0] = [str(SCRIPTS), str(SCRIPTS.parent)]  # run from a checkout without installing

from bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
