"""What a session's turn of 100 messages costs in SQL, table layout by table layout.

agentstate stores a conversation in ``router_messages``: clustered by (conversation, position)
(WITHOUT ROWID), with CHECKs, a foreign key and a time index. The OpenAI Agents SDK's
SQLiteSession appends to a rowid table with one index. This script inserts the same turns, in
plain apsw (no agentstate Python around it), into our layout, into variants of it that each drop
one of its costs, and into the SDK's layout, interleaved round by round, after loading the same
number of messages of other conversations into each file; then reads the newest 50 messages of
one of those conversations (its rows interleaved with the others', as sessions write them)::

    python scripts/bench_turn_layout.py --prefill 1000000 --rounds 150
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import apsw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench.data import CORPUS

import agentstate

CONVERSATION = "conv-0123456789abcdef"  # sorts among the prefilled conversations, not at the end
CHECK = re.compile(r"\s*CHECK \((?:[^()]|\([^()]*\))*\)")  # a CHECK, one level of parentheses inside


def agentstate_schema() -> str:
    """router_messages, its indexes, and the conversations it references, exactly as a migrated
    agentstate database has them (its triggers left out: they act on deletes only)."""
    conn = agentstate.connect(":memory:")
    try:
        rows = conn.execute(
            "SELECT sql FROM sqlite_schema WHERE tbl_name IN ('conversations', 'router_messages') "
            "AND type IN ('table', 'index') AND sql IS NOT NULL ORDER BY tbl_name, type DESC"
        ).fetchall()
    finally:
        conn.close()
    return ";\n".join(row[0] for row in rows) + ";"


def variant(schema: str, old: str, new: str) -> str:
    changed = schema.replace(old, new)
    if changed == schema:
        raise SystemExit(f"agentstate's schema no longer has {old[:60]!r}: this script's variant needs updating")
    return changed


def layouts() -> dict[str, tuple[str, bool]]:
    """name: (schema, foreign keys on)."""
    ours = agentstate_schema()
    table = ours[ours.index("CREATE TABLE router_messages") :]
    table = table[: table.index(";")]
    return {
        "agentstate (router_messages)": (ours, True),
        "- the foreign key": (ours, False),
        "- the CHECKs": (variant(ours, table, CHECK.sub("", table)), True),
        "- the time index": (
            variant(ours, "CREATE INDEX idx_router_messages_conv_time ON router_messages (conversation_id, created_at);", ""),
            True,
        ),
        "as a rowid table": (variant(ours, ") STRICT, WITHOUT ROWID;", ") STRICT;"), True),
    }


SDK = """
CREATE TABLE agent_sessions (session_id TEXT PRIMARY KEY, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                             updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE agent_messages (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,
                             message_data TEXT NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                             FOREIGN KEY (session_id) REFERENCES agent_sessions (session_id) ON DELETE CASCADE);
CREATE INDEX idx_agent_messages_session_id ON agent_messages (session_id, created_at);
"""
BASELINE = "SQLiteSession's layout"


def turns(count: int, seed: int = 1) -> list[list[tuple[str, str]]]:
    """Turns of 100 (role, JSON item) pairs, 60 to 1,000 characters of text each."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        turn = []
        for i in range(100):
            n, start = rng.choice([60, 150, 400, 1000]), rng.randrange(2000)
            text = CORPUS[start : start + n].replace('"', "'").replace("\\", "/")
            turn.append(("user" if i % 2 else "assistant", f'{{"role":"user","content":"{text}"}}'))
        out.append(turn)
    return out


def open_layout(folder: str, name: str, schema: str, foreign_keys: bool, synchronous: str) -> apsw.Connection:
    conn = apsw.Connection(os.path.join(folder, f"layout{len(os.listdir(folder))}.db"))
    conn.execute(f"PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous}; PRAGMA foreign_keys={int(foreign_keys)}")
    conn.execute(schema)
    return conn


def prefill(conn: apsw.Connection, sdk: bool, rows: int) -> None:
    """``rows`` messages of 1,000 other conversations, interleaved in time as sessions write them."""
    filler = CORPUS[:300]
    conn.execute("BEGIN")
    ids = [(f"conv-{k:04d}",) for k in range(1000)] + [(CONVERSATION,)]
    if sdk:
        conn.executemany("INSERT INTO agent_sessions (session_id) VALUES (?)", ids)
        conn.executemany(
            "INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)",
            ((f"conv-{i % 1000:04d}", filler) for i in range(rows)),
        )
    else:
        conn.executemany("INSERT INTO conversations (id) VALUES (?)", ids)
        conn.executemany(
            "INSERT INTO router_messages VALUES (?, ?, 'user', ?, '{}', NULL, '2026-12-07T11:00:00.123456Z')",
            ((f"conv-{i % 1000:04d}", i // 1000 + 1, filler) for i in range(rows)),
        )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def append_turn(conn: apsw.Connection, sdk: bool, turn: list[tuple[str, str]]) -> float:
    """One turn in one write transaction, as each library writes it; µs."""
    started = time.perf_counter_ns()
    conn.execute("BEGIN IMMEDIATE")
    if sdk:
        conn.executemany(
            "INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)",
            [(CONVERSATION, item) for _, item in turn],
        )
        conn.execute("UPDATE agent_sessions SET updated_at = CURRENT_TIMESTAMP WHERE session_id = ?", (CONVERSATION,))
    else:
        last = conn.execute("SELECT coalesce(max(position), 0) FROM router_messages WHERE conversation_id = ?", (CONVERSATION,)).get
        assert isinstance(last, int)
        now = "2026-12-07T12:00:00.123456Z"
        conn.executemany(
            "INSERT INTO router_messages (conversation_id, position, role, content, metadata, idempotency_key, created_at) "
            "VALUES (?, ?, ?, ?, '{}', NULL, ?)",
            [(CONVERSATION, last + 1 + i, role, item, now) for i, (role, item) in enumerate(turn)],
        )
    conn.execute("COMMIT")
    return (time.perf_counter_ns() - started) / 1000


READER = "conv-0500"  # a prefilled conversation: every 1,000th message


def latest_50(conn: apsw.Connection, sdk: bool) -> float:
    """The newest 50 messages of a prefilled conversation, as each library reads them; µs."""
    started = time.perf_counter_ns()
    if sdk:  # SQLiteSession.get_items(limit=50)
        rows = conn.execute(
            "SELECT message_data FROM agent_messages WHERE session_id = ? ORDER BY id DESC LIMIT 50", (READER,)
        ).fetchall()
    else:  # MessageLog.latest
        rows = conn.execute(
            "SELECT position, role, content, metadata, created_at FROM router_messages WHERE conversation_id = ? "
            "ORDER BY position DESC LIMIT 50",
            (READER,),
        ).fetchall()
    elapsed = (time.perf_counter_ns() - started) / 1000
    assert len(rows) == 50, len(rows)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time a 100-message turn in agentstate's message table, in variants of it, and in the "
        "OpenAI Agents SDK's SQLiteSession layout (plain apsw, interleaved rounds).",
        epilog="example: python scripts/bench_turn_layout.py --prefill 1000000 --rounds 150",
    )
    parser.add_argument("--prefill", type=int, default=100_000, metavar="N", help="messages of other conversations already stored (default 100000)")
    parser.add_argument("--rounds", type=int, default=150, metavar="N", help="turns appended to each layout (default 150)")
    parser.add_argument("--synchronous", choices=("NORMAL", "FULL"), default="NORMAL", help="durability of every layout (default NORMAL)")
    args = parser.parse_args(argv)
    if args.prefill < 50_000 or args.rounds < 1:
        parser.error("--prefill must be >= 50000 (the read needs 50 messages of one conversation) and --rounds >= 1")
    work = turns(20)
    with tempfile.TemporaryDirectory(prefix="turn-layout-") as folder:
        conns = {name: (open_layout(folder, name, schema, fk, args.synchronous), False) for name, (schema, fk) in layouts().items()}
        conns[BASELINE] = (open_layout(folder, BASELINE, SDK, True, args.synchronous), True)
        for name, (conn, sdk) in conns.items():
            print(f"loading {args.prefill:,} messages into {name}", file=sys.stderr, flush=True)
            prefill(conn, sdk, args.prefill)
        times: dict[str, list[float]] = {name: [] for name in conns}
        for round_ in range(args.rounds):
            if round_ % 50 == 0:
                print(f"round {round_ + 1}/{args.rounds}", file=sys.stderr, flush=True)
            for name, (conn, sdk) in conns.items():
                times[name].append(append_turn(conn, sdk, work[round_ % len(work)]))
        reads: dict[str, list[float]] = {name: [] for name in conns}
        for _ in range(args.rounds):
            for name, (conn, sdk) in conns.items():
                reads[name].append(latest_50(conn, sdk))
        for conn, _ in conns.values():
            conn.close()
    base, read_base = statistics.median(times[BASELINE]), statistics.median(reads[BASELINE])
    print(f"\nA turn of 100 messages, synchronous={args.synchronous}, {args.prefill:,} messages stored before, {args.rounds} rounds;")
    print("then the newest 50 messages of a conversation whose rows are interleaved with the others' (warm cache)\n")
    print("| layout | turn median µs | turn p99 µs | turn / SQLiteSession's | latest 50 median µs | latest 50 / SQLiteSession's |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, found in times.items():
        ordered = sorted(found)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        read = statistics.median(reads[name])
        print(
            f"| {name} | {statistics.median(found):,.0f} | {p99:,.0f} | {statistics.median(found) / base:.2f} "
            f"| {read:,.0f} | {read / read_base:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
