"""``python -m agentstate.cli``: the ``agentstate`` command."""

import sys

from agentstate.cli import main

if __name__ == "__main__":
    sys.exit(main())
