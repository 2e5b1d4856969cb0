"""Migrations: in order they equal the reference schema; concurrent runs do not collide."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from agentos import sql

REFERENCE = Path(__file__).parent / "reference_schema.sql"


def _dump(url: str) -> str:
    from agentos.kernel.embedded import binary

    pg_dump = binary("pg_dump")
    out = subprocess.run(
        [
            str(pg_dump),
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--schema=agentos",
            "--dbname",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = [
        ln
        for ln in out.splitlines()
        if ln.strip()
        and not ln.startswith("--")
        and not ln.startswith("\\")
        and not ln.startswith("SET ")
        and "pg_catalog.set_config" not in ln
    ]
    text = "\n".join(lines)
    return re.sub(r"-- pgqueuer [0-9.]+", "", text) + "\n"


def test_migrations_in_order_equal_reference_schema(empty_db_url: str) -> None:
    """Apply every migration to an empty database and compare with the reference dump."""
    env = {**os.environ, "AGENTOS_DATABASE_URL": empty_db_url}
    subprocess.run(
        [sys.executable, "-m", "agentos.cli.main", "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    dumped = _dump(empty_db_url)
    if os.environ.get("AGENTOS_UPDATE_REFERENCE") == "1":
        REFERENCE.write_text(dumped)
    assert REFERENCE.exists(), "run with AGENTOS_UPDATE_REFERENCE=1 to create the reference"
    assert dumped == REFERENCE.read_text(), (
        "schema drifted from tests/reference_schema.sql; if intended, regenerate with "
        "AGENTOS_UPDATE_REFERENCE=1 pytest tests/test_migrations.py"
    )


def test_two_processes_migrating_at_once_do_not_collide(empty_db_url: str) -> None:
    env = {**os.environ, "AGENTOS_DATABASE_URL": empty_db_url}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "agentos.cli.main", "db", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    outs = sorted(out.strip() for out, _ in results)
    assert outs.count("schema is up to date") == 2
    with psycopg.connect(empty_db_url) as conn:
        rows = conn.execute("SELECT version FROM agentos.schema_migrations").fetchall()
    assert [r[0] for r in rows] == [m.version for m in sql.migrations()]


def test_migrate_is_idempotent_and_status_reports_current(run_cli) -> None:  # type: ignore[no-untyped-def]
    assert run_cli("db", "migrate").stdout.strip() == "schema is up to date"
    st = run_cli("db", "status", "--json")
    assert st.returncode == 0
    assert '"ok": true' in st.stdout


def test_status_reports_pending_on_an_empty_database(empty_db_url: str) -> None:
    env = {**os.environ, "AGENTOS_DATABASE_URL": empty_db_url}
    st = subprocess.run(
        [sys.executable, "-m", "agentos.cli.main", "db", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert st.returncode == 1
    assert "pending 001" in st.stdout


@pytest.mark.parametrize("mig", sql.migrations(), ids=lambda m: m.version)
def test_migration_files_are_numbered_and_named(mig: sql.Migration) -> None:
    assert re.fullmatch(r"\d{3}", mig.version)
    assert mig.sql.strip()
