"""Migrations: plain numbered SQL files applied in order under an advisory lock.

Many pods may start at once; each takes `pg_advisory_lock` on one key, so exactly one
applies what is missing while the others wait and then find nothing to do. Applied
versions are recorded in agentos.schema_migrations with the file's checksum.
pgqueuer's own tables (in the same schema) are installed or upgraded by the same call,
before our files, since our triggers enqueue into them.

A file runs in one transaction, unless it holds `-- agentos:commit` lines: then each part
between them is a transaction of its own, in order, and the version is recorded with the
last. PostgreSQL needs this for `ALTER TYPE ... ADD VALUE`, whose new value cannot be
used before it commits. A part before such a line must be safe to run again (`IF NOT
EXISTS`): a migration stopped between parts is applied again from its start.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import psycopg
from agentos import sql
from agentos.kernel.db import Conn
from psycopg.rows import dict_row

log = logging.getLogger(__name__)

SCHEMA = "agentos"
# "agentos" as a 63-bit integer: the advisory lock key for migrations.
MIGRATION_LOCK_KEY = 0x6167656E746F73
# A line that ends a migration's transaction and starts the next (see the docstring).
COMMIT_POINT = re.compile(r"^-- agentos:commit[ \t]*$", re.MULTILINE)


def parts(text: str) -> list[str]:
    """A migration's SQL cut at its commit points: one transaction each."""
    return [p for p in COMMIT_POINT.split(text) if p.strip()] or [text]


@dataclass
class MigrationStatus:
    """Where the database stands against the migrations this version ships."""

    current: str | None
    latest: str
    pending: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    pgqueuer_installed: bool = False

    @property
    def ok(self) -> bool:
        """True when nothing is pending and no applied file was edited."""
        return not self.pending and not self.modified and self.pgqueuer_installed

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "current": self.current,
            "latest": self.latest,
            "pending": self.pending,
            "modified": self.modified,
            "pgqueuer_installed": self.pgqueuer_installed,
            "ok": self.ok,
        }


def pgqueuer_queries(conn: Conn) -> Any:
    """pgqueuer's Queries over conn (autocommit), with its objects in our schema."""
    from pgqueuer.adapters.drivers.psycopg import PsycopgDriver
    from pgqueuer.adapters.persistence import qb
    from pgqueuer.adapters.persistence.queries import Queries
    from pgqueuer.domain.settings import DBSettings

    settings = DBSettings(db_schema=SCHEMA)
    return Queries(
        PsycopgDriver(conn),  # type: ignore[arg-type]
        qbe=qb.QueryBuilderEnvironment(settings=settings),
        qbq=qb.QueryQueueBuilder(settings=settings),
        qbs=qb.QuerySchedulerBuilder(settings=settings),
    )


def _dict(conn: Conn) -> psycopg.AsyncCursor[dict[str, Any]]:
    # callers may hand us a connection with any row factory
    return conn.cursor(row_factory=dict_row)


async def _applied(conn: Conn) -> dict[str, str]:
    exists = await (
        await _dict(conn).execute(
            "SELECT to_regclass('agentos.schema_migrations') IS NOT NULL AS e"
        )
    ).fetchone()
    if not exists or not exists["e"]:
        return {}
    rows = await (
        await _dict(conn).execute("SELECT version, checksum FROM agentos.schema_migrations")
    ).fetchall()
    return {r["version"]: r["checksum"] for r in rows}


async def status(conn: Conn) -> MigrationStatus:
    """Compare the database with the shipped migrations (read-only)."""
    applied = await _applied(conn)
    shipped = sql.migrations()
    pending = [m.version for m in shipped if m.version not in applied]
    modified = [
        m.version for m in shipped if m.version in applied and applied[m.version] != m.checksum
    ]
    row = await (
        await _dict(conn).execute("SELECT to_regclass('agentos.pgqueuer') IS NOT NULL AS e")
    ).fetchone()
    return MigrationStatus(
        current=max(applied) if applied else None,
        latest=shipped[-1].version,
        pending=pending,
        modified=modified,
        pgqueuer_installed=bool(row and row["e"]),
    )


async def migrate(conn: Conn) -> list[str]:
    """Install/upgrade pgqueuer and apply pending migrations; returns versions applied.

    conn must be autocommit: each migration runs in its own transaction, and the
    advisory lock is held by the session across all of them.
    """
    if not conn.autocommit:
        raise ValueError("migrate() needs an autocommit connection")
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    try:
        async with conn.transaction():
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS agentos.schema_migrations (
                       version    text PRIMARY KEY,
                       name       text NOT NULL,
                       checksum   text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
        queries = pgqueuer_queries(conn)
        if await queries.schema_is_installed():
            plan = await queries.apply_upgrade()
            if plan.statements:
                log.info("pgqueuer schema upgraded", extra={"action": "migrate.pgqueuer"})
        else:
            await queries.install(create_schema=False)
            log.info("pgqueuer schema installed", extra={"action": "migrate.pgqueuer"})
        applied = await _applied(conn)
        done: list[str] = []
        for mig in sql.migrations():
            if mig.version in applied:
                if applied[mig.version] != mig.checksum:
                    log.warning(
                        "applied migration %s_%s differs from the shipped file",
                        mig.version,
                        mig.name,
                        extra={"action": "migrate.modified"},
                    )
                continue
            chunks = parts(mig.sql)
            for i, chunk in enumerate(chunks):
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL search_path TO {SCHEMA}, public")
                    await conn.execute(chunk.encode())
                    if i == len(chunks) - 1:
                        await conn.execute(
                            "INSERT INTO agentos.schema_migrations (version, name, checksum) "
                            "VALUES (%s, %s, %s)",
                            (mig.version, mig.name, mig.checksum),
                        )
            log.info(
                "applied migration %s_%s", mig.version, mig.name, extra={"action": "migrate.apply"}
            )
            done.append(mig.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
