"""The failover harness (tests/postgres/cluster.py) does what failover tests will rely on.

Raw psycopg, no agentstate code: the primary really waits for its standby on every commit, a
SIGKILLed primary takes nothing acknowledged with it, and a client holding the two-host URL
(``target_session_attrs=read-write``) is refused while there is no primary, then reaches the
promoted standby and finds every committed row.
"""

from __future__ import annotations

import psycopg
import pytest

from tests.postgres.cluster import Cluster

ROWS = 200


def in_recovery(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])  # type: ignore[index]


def test_a_killed_primary_loses_no_commit_and_clients_follow_the_promotion(pg_cluster: Cluster) -> None:
    cluster = pg_cluster
    assert cluster.url().startswith("postgresql://")
    conn = psycopg.connect(cluster.url(), autocommit=True)
    try:
        assert conn.info.port == cluster.primary_port
        assert conn.execute("SELECT sync_state, state FROM pg_stat_replication").fetchall() == [("sync", "streaming")]
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        # remote_apply: the commit returns once the standby has replayed it, so a read there sees it now.
        conn.execute("SET synchronous_commit = remote_apply")
        conn.execute("INSERT INTO t VALUES (0)")
        with psycopg.connect(cluster.node_url("standby")) as standby:
            assert standby.execute("SELECT id FROM t").fetchall() == [(0,)]
        # The default (on: remote flush): acknowledged once in the standby's WAL, perhaps not yet replayed.
        conn.execute("SET synchronous_commit = on")
        for i in range(1, ROWS):
            conn.execute("INSERT INTO t VALUES (%s)", (i,))

        cluster.kill_primary()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    finally:
        conn.close()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.node_url("primary")).close()
    # No node takes writes: the dead one refuses the connection, the standby is read-only.
    with pytest.raises(psycopg.OperationalError, match="read-only"):
        psycopg.connect(cluster.url()).close()
    assert in_recovery(cluster.node_url("standby"))

    assert cluster.promote() < 10
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        assert conn.info.port == cluster.standby_port
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        assert conn.execute("SELECT id FROM t ORDER BY id").fetchall() == [(i,) for i in range(ROWS)]
        conn.execute("INSERT INTO t VALUES (%s)", (ROWS,))  # no standby of its own to wait for
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (ROWS + 1,)


def test_stop_is_safe_twice_and_leaves_nothing(pg_cluster: Cluster) -> None:
    cluster = pg_cluster
    cluster.kill_primary()
    cluster.stop()
    cluster.stop()
    assert not cluster.folder.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.node_url("standby")).close()
