"""Try agentstate on PostgreSQL with nothing installed but this checkout's extras.

Starts a throwaway PostgreSQL 16 (the ``pgserver`` wheel's binaries, as the tests do; or system
binaries), runs ``agentstate demo`` against it, and stops it (``--keep`` leaves it running and
prints its URL, for a psql or a script of your own; stop it with Ctrl-C)::

    .venv/bin/pip install -e '.[test,postgres]' && .venv/bin/python scripts/try_postgres.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/postgres/server.py

from agentstate import demo
from tests.postgres import server as servers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20, help="tasks the demo creates and runs (default 20)")
    parser.add_argument("--keep", action="store_true", help="keep the server running after the demo")
    args = parser.parse_args()
    print("starting a throwaway PostgreSQL ...", flush=True)
    server = servers.start()
    try:
        server.create_database("agentstate")
        url = server.url("agentstate")
        print(f"PostgreSQL {server.version} from {server.origin}, ready in {server.started_in_s:.1f} s: {url}")
        demo.run(url, tasks=args.tasks)
        if args.keep:
            print(f"the server keeps running at {url}; Ctrl-C stops it and deletes its data")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
