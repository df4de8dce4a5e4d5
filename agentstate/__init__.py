"""agentstate: the state store for multi-agent systems, on SQLite through apsw.

import agentstate
conn = agentstate.connect("agents.db")   # creates and migrates the file if needed
"""

from agentstate.database import connect, connect_async
from agentstate.engine import DEFAULT_PATH, Settings, write
from agentstate.migrations import MigrationStatus, migrate, status

__all__ = [
    "DEFAULT_PATH",
    "MigrationStatus",
    "Settings",
    "connect",
    "connect_async",
    "migrate",
    "status",
    "write",
]
__version__ = "0.1.0"
