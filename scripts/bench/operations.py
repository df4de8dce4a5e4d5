"""What is measured: every operation the benchmark times, what it does, and which of them
fingerprint their results (every contender must find the same rows for each key)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Operation:
    name: str
    what: str
    items: int = 1
    """Messages or tasks per timed call, for the throughput column."""
    processes: int = 0
    """Executor processes, for the claim + finish tests (0 for the others)."""
    batch: int = 1
    """Tasks each executor claims, then finishes, per round trip (claim + finish tests)."""
    backlog: int = 0
    """Tasks pending at the start of each round (claim tests; 0: the data set's own ~10%)."""
    fused: bool = True
    """Claim tests: a contender that has one call to finish a task and claim the next
    (agentstate's complete_and_claim_next) uses it; False: two calls per task for everyone."""
    round_factor: int = 1
    """Claim tests: this many times the budget's rounds (short rounds need more of them)."""


OPERATIONS = (
    Operation("get_current_task", "the planner's oldest pending task"),
    Operation("get_completed_task", "the planner's oldest completed or failed_validation task"),
    Operation(
        "select_1",
        "SELECT 1 through a cached statement (the floor; postgres: the same on a pooled connection of its "
        "handle, one round trip to the server, the floor of every call there)",
    ),
    Operation("latest_50", "the newest 50 messages of one stream"),
    Operation("keyset_page", "the 50 messages before a cursor in the middle of a stream"),
    Operation("append_one", "one message, in its own transaction"),
    Operation("append_turn_100", "a turn of 100 messages to one stream, one transaction", items=100),
    Operation(
        "append_bulk_10k",
        "a bulk load: 10,000 messages spread over all streams (10 each at 1k streams), one transaction",
        items=10_000,
    ),
    Operation(
        "claim_finish_1p",
        "claim a task and finish it, 1 executor process (agentstate finishes one and claims the next in one "
        "transaction, complete_and_claim_next; the others make two calls, their claim then their complete)",
        processes=1,
    ),
    Operation("claim_finish_4p", "the same, 4 executor processes", processes=4),
    Operation(
        "claim_finish_16p",
        "the same, 16 executor processes (agentstate and postgres: whether many executors on a server overtake one "
        "SQLite file's single writer)",
        processes=16,
    ),
    Operation(
        "claim_finish_4p_batch10",
        "claim 10 tasks in one transaction, finish them in another, 4 executor processes (agentstate's "
        "claim_many and complete_many)",
        processes=4,
        batch=10,
    ),
    Operation(
        "claim_backlog_5k",
        "claim_finish_1p with exactly 5,000 tasks pending at the start of each round (set up untimed)",
        processes=1,
        backlog=5_000,
    ),
    # The queue users run (issue 21): at any size, exactly 400 tasks queued at the start of each
    # round (set up untimed, the rest of the pending tasks parked) and all of them consumed, then
    # put back; four times the rounds. Every contender makes two calls per task here.
    Operation(
        "claim_complete_1p",
        "a queue of 400: claim a task, then complete it (two calls, two transactions, for every contender: "
        "agentstate claim + complete, litequeue pop + done, huey dequeue + put_result), 1 executor process",
        processes=1,
        backlog=400,
        fused=False,
        round_factor=4,
    ),
    Operation(
        "claim_complete_4p", "the same, 4 executor processes", processes=4, backlog=400, fused=False, round_factor=4
    ),
    Operation(
        "complete_and_claim_next_1p",
        "a queue of 400: agentstate's complete_and_claim_next (finish one task and claim the next in one "
        "transaction), 1 executor process",
        processes=1,
        backlog=400,
        round_factor=4,
    ),
    Operation(
        "complete_and_claim_next_4p", "the same, 4 executor processes", processes=4, backlog=400, round_factor=4
    ),
    Operation(
        "claim_many_10_1p",
        "a queue of 400: claim_many(10), then complete_many of the 10 (two transactions per 10 tasks), 1 process",
        processes=1,
        batch=10,
        backlog=400,
        round_factor=4,
    ),
    Operation(
        "claim_many_10_4p", "the same, 4 executor processes", processes=4, batch=10, backlog=400, round_factor=4
    ),
    # Last: the tasks they add stay pending, and would grow the queues the claim tests drain.
    Operation(
        "enqueue_one",
        "create one task, its own transaction (agentstate create_task, litequeue put, huey enqueue)",
    ),
    Operation(
        "enqueue_batch_100",
        "create 100 tasks in one transaction (agentstate create_tasks; the peers have no batch enqueue)",
        items=100,
    ),
    # LangGraph checkpointers (langgraph_sqlite, agentstate_langgraph), on data of their own built
    # untimed: as many checkpoints as rows (a checkpoint per step of a graph) over the planners'
    # threads, so 100 per thread up to 100k rows and 1,000 at 1M (~50 s to build, ~1.1 GB a file);
    # each a small channel state, ~700 bytes serialised, with no pending writes.
    Operation(
        "checkpoint_get",
        "LangGraph get_tuple: a thread's newest checkpoint and its pending writes (the data: as many checkpoints "
        "as rows, over the ~1k planners' threads, a small channel state each)",
    ),
    Operation("checkpoint_list_50", "LangGraph list(limit=50): a thread's 50 newest checkpoints, read and decoded"),
    Operation(
        "checkpoint_put",
        "LangGraph put: one new checkpoint (a small channel state) on an existing thread, its parent the "
        "thread's newest, as a graph's step stores it; its own transaction",
    ),
    # Google ADK session services (adk_sqlite, adk_sqlite_wal, agentstate_adk, agentstate_adk_full), on
    # data of their own built untimed: a session of 3,000 events per key planner, whatever the size.
    Operation(
        "adk_get_session_50",
        "ADK get_session(config=GetSessionConfig(num_recent_events=50)) of a 3,000-event session: its state "
        "and latest 50 events, decoded",
    ),
    Operation(
        "adk_append_event",
        "ADK append_event: a new assistant event with a one-key state delta, to a session loaded untimed; "
        "its own transaction",
    ),
)
OPERATION = {op.name: op for op in OPERATIONS}
CLAIM_OPERATIONS = tuple(op.name for op in OPERATIONS if op.processes)
QUEUE_SCENARIO = (
    "enqueue_one", "claim_complete_1p", "claim_complete_4p", "complete_and_claim_next_1p", "complete_and_claim_next_4p",
    "claim_many_10_1p", "claim_many_10_4p",
)  # fmt: skip
"""``--queue``'s operations: the queue of issue 21, at 10k and 1M rows."""


FINGERPRINTED = {
    "get_current_task", "get_completed_task", "latest_50", "keyset_page", "checkpoint_get", "checkpoint_list_50",
    "adk_get_session_50",
}  # fmt: skip
