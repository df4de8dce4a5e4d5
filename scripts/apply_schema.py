#!/usr/bin/env python3
"""Apply agentstate's schema migrations to a database: ``python scripts/apply_schema.py PATH [--list]``.

The same as ``agentstate migrate PATH``; exit status 0 on success, 1 with a one-line reason on a refusal.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from agentstate.cli import main

if __name__ == "__main__":
    sys.exit(main(["migrate", *sys.argv[1:]]))
