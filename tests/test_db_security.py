"""The embedded database trusts nobody: passwords (in a 0600 file, never in a URL),
scram authentication, and agents on a role with no DDL and no superuser power."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from typing import Any

import psycopg
import pytest
from agentos.kernel import embedded


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = Path(tmp_path_factory.mktemp("sechome"))
    server = embedded.ensure_running(home / "pgdata")
    from agentos.kernel.migrate import migrate

    async def _migrate() -> None:
        conn = await psycopg.AsyncConnection.connect(server.url(), autocommit=True)
        try:
            await migrate(conn)
        finally:
            await conn.close()

    asyncio.run(_migrate())
    yield home
    embedded.stop(home / "pgdata")


def test_passwords_live_in_a_private_file_and_never_in_a_url(home: Path) -> None:
    pgpass = home / "pgpass"
    assert stat.S_IMODE(pgpass.stat().st_mode) == 0o600
    passwords = [line.split(":")[4] for line in pgpass.read_text().splitlines()]
    assert len(passwords) == 2 and all(len(p) >= 32 for p in passwords)
    server = embedded.running_server(home / "pgdata")
    assert server is not None
    for url in (server.url(), embedded.agent_url(home / "pgdata")):
        assert not any(p in url for p in passwords) and "passfile=" in url
    assert "scram-sha-256" in (home / "pgdata" / "pg_hba.conf").read_text()
    assert "trust" not in (home / "pgdata" / "pg_hba.conf").read_text().replace("trusts", "")


def test_the_socket_without_the_password_is_refused(home: Path) -> None:
    server = embedded.running_server(home / "pgdata")
    assert server is not None
    bare = server.url().split("&passfile=")[0]
    for user in ("postgres", "agentos_agent"):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(bare.replace("postgres@", f"{user}@", 1), connect_timeout=5)


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE agentos.evil (x int)",
        "COPY (SELECT 1) TO PROGRAM 'id'",
        "SELECT pg_read_file('/etc/passwd')",
        "ALTER SYSTEM SET log_statement = 'all'",
        "DROP TABLE agentos.tasks",
        "TRUNCATE agentos.activities",
        "CREATE ROLE intruder",
        "CREATE TABLE public.evil (x int)",
    ],
)
def test_the_agent_role_cannot_leave_the_rows(home: Path, statement: str) -> None:
    with psycopg.connect(embedded.agent_url(home / "pgdata"), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_the_agent_role_does_the_kernels_work(home: Path) -> None:
    with psycopg.connect(embedded.agent_url(home / "pgdata"), autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("agentos_agent",)
        tid = conn.execute(
            "INSERT INTO agentos.tasks (title, role) VALUES ('by an agent', 'worker') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        # the insert trigger enqueued its job and recorded its activity, as for anyone
        jobs = conn.execute(
            "SELECT count(*) FROM agentos.pgqueuer WHERE entrypoint = 'role:worker'"
        ).fetchone()
        acts = conn.execute(
            "SELECT count(*) FROM agentos.activities WHERE task_id = %s", (tid,)
        ).fetchone()
        assert jobs == (1,) and acts is not None and acts[0] >= 1


def test_the_agent_role_converses(home: Path) -> None:
    """008's tables and functions are the agents' to use: people, channels, receipts."""
    with psycopg.connect(embedded.agent_url(home / "pgdata"), autocommit=True) as conn:
        conn.execute("INSERT INTO agentos.agents (name, role) VALUES ('sec-w1', 'worker')")
        conn.execute("INSERT INTO agentos.people (name) VALUES ('sec-alice')")
        cid = conn.execute(
            "INSERT INTO agentos.channels (name) VALUES ('sec-ops') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO agentos.channel_members (channel_id, member) VALUES (%s, 'sec-w1')",
            (cid,),
        )
        mid, woken = conn.execute(
            "INSERT INTO agentos.messages (channel_id, from_agent, kind, body) "
            "VALUES (%s, 'sec-alice', 'question', '@sec-w1 hi') RETURNING id, woken",
            (cid,),
        ).fetchone()  # type: ignore[misc]
        assert woken == ["sec-w1"]
        conn.execute(
            "INSERT INTO agentos.message_reads (message_id, reader) VALUES (%s, 'sec-w1')", (mid,)
        )
        assert conn.execute("SELECT agentos.unread_for('sec-w1')").fetchone() == (0,)
