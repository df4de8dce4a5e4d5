"""Client processes for the failover test: executors that claim and complete, appenders that
append. Each writes one JSON line per acknowledged operation (flushed at once, so a line means
the call returned) and per call whose outcome it was told is unknown, until a stop file appears.
"""

from __future__ import annotations

import json
import os
import time
from typing import IO, Any

import agentstate
from agentstate import errors

PAUSE_S = 0.004  # between operations: the failover must land mid-work, not after it


def _log(out: IO[str], **fields: Any) -> None:
    out.write(json.dumps({**fields, "t": time.time()}) + "\n")
    out.flush()


def _connect(url: str) -> Any:
    # A short connect timeout, so the pool gives up on a dead host quickly and tries again.
    return agentstate.connect(url, pool_size=2, connect_timeout_s=1, failover_timeout_s=30)


def executor(url: str, name: str, log_path: str, stop_path: str) -> None:
    conn = _connect(url)
    tasks = agentstate.TaskManager(conn, None)
    with open(log_path, "a") as out:
        while not os.path.exists(stop_path):
            try:
                claim = tasks.claim(name, lease_seconds=3)
            except errors.ConnectionLostError as exc:
                _log(out, op="claim_failed", error=str(exc))
                continue
            if claim is None:
                time.sleep(0.05)
                continue
            _log(out, op="claim", task=claim.worker_id, fence=claim.token)
            time.sleep(PAUSE_S)
            try:
                tasks.complete(claim, result={"by": name})
            except errors.ConnectionLostError as exc:
                _log(out, op="complete_unknown", task=claim.worker_id, fence=claim.token, error=str(exc))
                continue
            except errors.StaleTokenError:  # the lease ran out during the failover; another took it
                _log(out, op="complete_stale", task=claim.worker_id, fence=claim.token)
                continue
            _log(out, op="complete", task=claim.worker_id, fence=claim.token)
    conn.close()


def appender(url: str, name: str, log_path: str, stop_path: str) -> None:
    conn = _connect(url)
    log = agentstate.MessageLog(conn)
    conversation = f"conv-{name}"
    i = 0
    with open(log_path, "a") as out:
        while not os.path.exists(stop_path):
            i += 1
            content = f"{name}-{i}"
            # Every other message has an idempotency key: those are repeated across a failover.
            key = content if i % 2 == 0 else None
            try:
                message = log.append("router", conversation, role="user", content=content, idempotency_key=key)
            except errors.ConnectionLostError as exc:
                _log(out, op="append_unknown", content=content, key=key, error=str(exc))
                continue
            _log(out, op="append", content=content, key=key, position=message.position)
            time.sleep(PAUSE_S)
    conn.close()
