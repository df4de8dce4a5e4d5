"""Try agentstate on PostgreSQL with nothing installed but this checkout's extras.

Starts a throwaway PostgreSQL 16 (the ``pgserver`` wheel's binaries, as the tests do; or system
binaries), runs ``agentstate demo`` against it, then stops the server and deletes its data.
With ``--keep`` the server keeps running after the demo and its URL is printed, for psql or a
script of your own, until Ctrl-C or SIGTERM (or SIGHUP), which stop it and delete its data::

    .venv/bin/pip install -e '.[test,postgres]' && .venv/bin/python scripts/try_postgres.py
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

import postgres_server as servers  # beside this file: scripts/postgres_server.py

from agentstate import demo

STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""The signals that stop the server (it runs in a session of its own: they never reach it)."""


class _Stop:
    """Turns a stopping signal into KeyboardInterrupt while the server can be stopped; one that
    arrives while it starts is held until it has started (else its process would be left
    running), and one that arrives while it stops is ignored (it is stopping already)."""

    def __init__(self) -> None:
        self.holding = True
        self.asked = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.holding:
            self.asked = True
            return
        raise KeyboardInterrupt

    def started(self) -> None:
        self.holding = False
        if self.asked:
            raise KeyboardInterrupt

    def stopping(self) -> None:
        self.holding = True


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Without --keep the server and its data are gone when the script ends, so it prints no URL.",
    )
    parser.add_argument("--tasks", type=int, default=20, help="tasks the demo creates and runs (default 20)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the server running after the demo and print its URL; Ctrl-C, SIGTERM or SIGHUP then "
        "stop it and delete its data",
    )
    args = parser.parse_args()
    stop = _Stop()
    for signum in STOPPING:
        signal.signal(signum, stop)
    print("starting a throwaway PostgreSQL ...", flush=True)
    try:
        server = servers.start()
    except servers.Unavailable as exc:
        print(f"try_postgres: {exc}", file=sys.stderr)
        return 1
    finished = False
    try:
        stop.started()
        server.create_database("agentstate")
        url = server.url("agentstate")
        print(f"PostgreSQL {server.version} from {server.origin}, ready in {server.started_in_s:.1f} s", flush=True)
        demo.run(url, tasks=args.tasks)
        finished = True
        if args.keep:
            print(f"the server keeps running at {url} ; Ctrl-C or SIGTERM stops it and deletes its data", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping the server ...", flush=True)
    finally:
        stop.stopping()
        server.stop()
    print("the server is stopped and its data deleted" + ("" if args.keep else " (--keep keeps it running)"))
    return 0 if finished else 130


if __name__ == "__main__":
    sys.exit(main())
