"""The PostgreSQL handle across a server restart, and when the server is not there or says no.

A server of this module's own (scripts/postgres_server.py), so that restarting it disturbs no
other test. Clients are handles in threads, each named by ``application_name`` so that
``pg_stat_activity`` tells their server connections apart.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import postgres_server as servers
import psycopg
import pytest

import agentstate
from agentstate import errors
from tests.engines import fresh_database

CLIENTS = 3
RESTARTS = 3
DEADLINE_S = 30.0


@pytest.fixture(scope="module")
def own_server() -> Iterator[servers.Server]:
    try:
        server = servers.start()
    except servers.Unavailable as exc:
        pytest.fail(f"no PostgreSQL server for tests/postgres: {exc}")
    try:
        if server.process is None:
            pytest.skip("AGENTSTATE_TEST_POSTGRES_URL names a server these tests cannot restart")
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_url(own_server: servers.Server) -> Iterator[str]:
    name, _ = fresh_database(own_server, None)
    agentstate.connect(own_server.url(name), pool_size=1).close()  # migrated
    yield own_server.url(name)
    own_server.drop_database(name)


def server_connections(server: servers.Server, prefix: str) -> dict[str, int]:
    """Client backends per application_name starting with ``prefix``."""
    with psycopg.connect(server.admin_conninfo, autocommit=True) as admin:
        found = admin.execute(
            "SELECT application_name, count(*) FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND application_name LIKE %s GROUP BY 1",
            (prefix + "%",),
        ).fetchall()
    return {str(name): int(n) for name, n in found}


class Client(threading.Thread):
    """One single-threaded agent: reads in a loop on a handle of its own, through restarts."""

    def __init__(self, url: str, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.conn: Any = agentstate.connect(url, application_name=name)
        self.stop = threading.Event()
        self.last_ok = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        agents = agentstate.Agents(self.conn)
        try:
            while not self.stop.is_set():
                agents.list_planners()  # a read: repeated by agentstate across the restart
                self.last_ok = time.monotonic()
                time.sleep(0.005)
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_a_restart_leaves_each_client_the_connections_it_held(own_server: servers.Server, own_url: str) -> None:
    """Each restart left every single-threaded client one more server connection (psycopg_pool
    replaced the broken one and also grew for the call waiting on that replacement): 9 clients
    held 9, 18, 27 ... connections after 0, 1, 2 ... restarts."""
    clients = [Client(own_url, f"restart-client-{i}") for i in range(CLIENTS)]
    for client in clients:
        client.start()
    seen: list[dict[str, int]] = []
    pooled: list[list[int]] = []
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not all(c.last_ok for c in clients):
            assert time.monotonic() < deadline, "the clients did not start working"
            time.sleep(0.01)
        before = server_connections(own_server, "restart-client-")
        seen.append(before)
        assert before == {c.name: 1 for c in clients}
        for _ in range(RESTARTS):
            own_server.restart(down_s=0.5)
            restarted = time.monotonic()
            deadline = restarted + DEADLINE_S
            while not all(c.last_ok > restarted for c in clients):
                assert [c.error for c in clients if c.error] == []
                assert time.monotonic() < deadline, "the clients did not carry on after the restart"
                time.sleep(0.01)
            time.sleep(1.5)  # a connection the pool was still opening would show by now
            seen.append(server_connections(own_server, "restart-client-"))
            pooled.append([c.conn.pool.get_stats()["pool_size"] for c in clients])
        print(f"\nserver connections of {CLIENTS} clients, at start and after each restart: {seen}")
        assert seen == [before] * (RESTARTS + 1)
        assert pooled == [[1] * CLIENTS] * RESTARTS  # and none on its way
        assert [c.error for c in clients if c.error] == []
    finally:
        for client in clients:
            client.stop.set()
        for client in clients:
            client.join(10)
            client.conn.close()


def test_a_call_waiting_for_the_connection_that_broke_gets_a_new_one_at_once(
    own_server: servers.Server, own_url: str
) -> None:
    """The broken connection's place is given up, not replaced: a call already waiting for it
    (the handle's one connection, held across a restart by a session that does not retry) must
    still get a new one at once, not after waiting out connect_timeout_s (10 s)."""
    conn = agentstate.connect(own_url, pool_size=1, connect_timeout_s=10, application_name="restart-shared")
    waiting, done = threading.Event(), []

    def wait_for_the_connection() -> None:
        waiting.set()
        done.append(agentstate.Agents(conn).list_planners())

    try:
        with pytest.raises(errors.ConnectionLostError), conn.session() as session:
            session.execute("SELECT 1")
            reader = threading.Thread(target=wait_for_the_connection, daemon=True)
            reader.start()
            assert waiting.wait(5)
            own_server.restart(down_s=0.2)
            session.execute("SELECT 1")  # the connection broke with the restart
        given_back = time.monotonic()
        reader.join(15)
        assert done == [[]]
        assert time.monotonic() - given_back < 5, "the waiting call waited out connect_timeout_s"
        assert server_connections(own_server, "restart-shared") == {"restart-shared": 1}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def password_role(own_server: servers.Server) -> str:
    """A role that must give its password (scram-sha-256), whoever else is trusted."""
    assert own_server.folder is not None
    with psycopg.connect(own_server.admin_conninfo, autocommit=True) as admin:
        admin.execute("CREATE ROLE pwuser LOGIN PASSWORD 'right'")
        hba = own_server.folder / "data" / "pg_hba.conf"
        hba.write_text("local all pwuser scram-sha-256\n" + hba.read_text())
        admin.execute("SELECT pg_reload_conf()")
    return "pwuser"


def with_user(url: str, user: str, password: str | None = None) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://{user}{':' + password if password else ''}@", 1)


@pytest.mark.parametrize(
    ("refusal", "reason"),
    [
        ("no such database", 'database "agentstate_nowhere" does not exist'),
        ("no such role", 'role "nobody_here" does not exist'),
        ("wrong password", 'password authentication failed for user "pwuser"'),
    ],
)
def test_a_permanent_refusal_fails_at_once_with_its_own_error(
    own_server: servers.Server, password_role: str, refusal: str, reason: str
) -> None:
    """It looked like a lost connection: ConnectionLostError after connect_timeout_s (10 s)."""
    url = {
        "no such database": own_server.url("agentstate_nowhere"),
        "no such role": with_user(own_server.url("postgres"), "nobody_here"),
        "wrong password": with_user(own_server.url("postgres"), password_role, "wrong"),
    }[refusal]
    begin = time.monotonic()
    with pytest.raises(errors.ConnectionRejectedError, match=reason) as caught:
        agentstate.connect(url, connect_timeout_s=10)
    assert time.monotonic() - begin < 3, "retried as if the server were unreachable"
    assert "wrong" not in str(caught.value)  # the password is never shown


def test_a_refusal_after_the_server_was_reached_is_not_retried_either(
    own_server: servers.Server, own_url: str
) -> None:
    """A call across a lost connection is repeated for failover_timeout_s; once the server says
    the database is gone, repeating cannot help."""
    conn = agentstate.connect(own_url, failover_timeout_s=30)
    try:
        agents = agentstate.Agents(conn)
        assert agents.list_planners() == []
        name = psycopg.conninfo.conninfo_to_dict(own_url)["dbname"]
        with psycopg.connect(own_server.admin_conninfo, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)'.encode())
        begin = time.monotonic()
        with pytest.raises(errors.ConnectionRejectedError, match="does not exist"):
            agents.list_planners()
        assert time.monotonic() - begin < 5, "retried for failover_timeout_s"
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_server_fails_naming_host_port_and_the_cause(caplog: pytest.LogCaptureFixture) -> None:
    """It took connect_timeout_s (10 s), logged a psycopg_pool warning per attempt, and named
    the URL without its port, with "Connection refused" only in those warnings."""
    port = free_port()
    begin = time.monotonic()
    with caplog.at_level("DEBUG"), pytest.raises(errors.ConnectionLostError) as caught:
        agentstate.connect(f"postgresql://agent:secret@127.0.0.1:{port}/agents", connect_timeout_s=10)
    assert time.monotonic() - begin < 5, "a refused connection was retried until connect_timeout_s"
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "connection refused" in message, message
    assert "secret" not in message
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_missing_unix_socket_is_named_too(tmp_path: Any) -> None:
    with pytest.raises(errors.ConnectionLostError) as caught:
        agentstate.connect(f"postgresql:///agents?host={tmp_path}&port=6543", connect_timeout_s=10)
    assert f"{tmp_path}:6543" in str(caught.value) and "connection refused" in str(caught.value)


def test_a_restart_is_logged_once_not_per_reconnection_attempt(
    own_server: servers.Server, own_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """psycopg_pool logged a warning per failed attempt (and per broken connection) of each
    client; the handle says once that the server cannot be reached, and carries on."""
    client = Client(own_url, "restart-logged")
    client.start()
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not client.last_ok:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with caplog.at_level("INFO"):
            own_server.restart(down_s=1.5)  # long enough for more than one reconnection attempt
            restarted = time.monotonic()
            while client.last_ok <= restarted:
                assert client.error is None and time.monotonic() < restarted + DEADLINE_S
                time.sleep(0.01)
        pool_warnings = [r.getMessage() for r in caplog.records if r.name == "psycopg.pool" and r.levelno >= logging.WARNING]
        assert pool_warnings == []
        said = [r.getMessage() for r in caplog.records if r.name == "agentstate.postgres" and r.levelno >= logging.WARNING]
        assert len(said) == 1 and "cannot be reached" in said[0], said
    finally:
        client.stop.set()
        client.join(10)
        client.conn.close()


def test_a_server_that_answers_nothing_is_waited_for_until_connect_timeout_s() -> None:
    """Only "nothing listens" fails early: a server that took the connection but does not
    answer (overloaded, or a black-holed network) may yet answer, so connect() waits for it."""
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)  # the kernel completes the handshake; nobody ever answers
        port = mute.getsockname()[1]
        begin = time.monotonic()
        with pytest.raises(errors.ConnectionLostError, match=f"127.0.0.1:{port}.*within 3"):
            agentstate.connect(f"postgresql://127.0.0.1:{port}/agents", connect_timeout_s=3)
        assert time.monotonic() - begin >= 2.5, "gave up on a server that had not refused"


def test_a_sessions_turn_is_written_across_a_restart(own_server: servers.Server, own_url: str) -> None:
    """AgentStateSession.add_items inserts its turn itself (not through MessageLog.append_many):
    it must be repeated across a lost connection as the managers' writes are, and stored once."""
    from agentstate.integrations.openai_agents import AgentStateSession  # the openai-agents extra

    conn = agentstate.connect(own_url, application_name="session-restart")
    try:

        async def turns() -> list[Any]:
            session = AgentStateSession("conv-restart", conn)
            await session.add_items([{"role": "user", "content": "before"}])
            own_server.restart(down_s=0.5)
            await session.add_items([{"role": "user", "content": "after"}, {"role": "assistant", "content": "hi"}])
            return await session.get_items()

        items = asyncio.run(turns())
    finally:
        conn.close()
    assert [item["content"] for item in items] == ["before", "after", "hi"]
