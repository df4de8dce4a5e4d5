"""agentstate: the state store for multi-agent systems, on SQLite through apsw (or PostgreSQL).

import agentstate
conn = agentstate.connect("agents.db")   # creates and migrates the file if needed
tasks = agentstate.TaskManager(conn, "planner-1")
log = agentstate.MessageLog(conn)
"""

from agentstate.agents import Agents, Conversation, Link, Planner, Router
from agentstate.aio import AsyncAgents, AsyncMessageLog, AsyncTaskManager
from agentstate.backup import BackupReport, backup
from agentstate.engines import DEFAULT_PATH, connect, connect_async
from agentstate.messages import STREAMS, Message, MessageLog, NewMessage, Stream
from agentstate.migrations import MigrationStatus, migrate, status
from agentstate.monitor import QuerySnapshot, query_stats, reset_query_stats
from agentstate.retention import CleanupReport, cleanup
from agentstate.store_stats import Stats, stats
from agentstate.tasks import BlockedTask, Claim, Task, TaskEvent, TaskManager
from agentstate.transactions import write, write_async

__all__ = [
    "DEFAULT_PATH",
    "STREAMS",
    "Agents",
    "AsyncAgents",
    "AsyncMessageLog",
    "AsyncTaskManager",
    "BackupReport",
    "BlockedTask",
    "Claim",
    "CleanupReport",
    "Conversation",
    "Link",
    "Message",
    "MessageLog",
    "MigrationStatus",
    "NewMessage",
    "Planner",
    "QuerySnapshot",
    "Router",
    "Stats",
    "Stream",
    "Task",
    "TaskEvent",
    "TaskManager",
    "backup",
    "cleanup",
    "connect",
    "connect_async",
    "migrate",
    "query_stats",
    "reset_query_stats",
    "stats",
    "status",
    "write",
    "write_async",
]
__version__ = "0.1.0"
