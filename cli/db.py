"""`agentos db`: migrate, inspect, open psql."""

from __future__ import annotations

import os
import shutil
import sys

import click
from agentos.cli.common import (
    CONTEXT,
    echo_json,
    fail,
    handle_errors,
    open_kernel,
    run,
    settings,
)


@click.group(context_settings=CONTEXT)
def db() -> None:
    """The database: migrate, inspect, open psql."""


@db.command("migrate", context_settings=CONTEXT)
@handle_errors
def db_migrate() -> None:
    """Apply pending migrations (pgqueuer's tables included); safe to run concurrently."""
    from agentos.kernel import migrate as mig

    async def _go() -> list[str]:
        kernel = await open_kernel(migrate=False, pool_max=1)
        try:
            conn = await kernel.connect(autocommit=True)
            try:
                return await mig.migrate(conn)
            finally:
                await conn.close()
        finally:
            await kernel.close()

    applied = run(_go())
    click.echo(f"applied {', '.join(applied)}" if applied else "schema is up to date")


@db.command("status", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def db_status(as_json: bool) -> None:
    """Schema version; exits 0 when up to date, 1 when migrations are pending."""
    from agentos.kernel import migrate as mig

    async def _go() -> mig.MigrationStatus:
        kernel = await open_kernel(migrate=False, pool_max=1)
        try:
            async with kernel.connection() as conn:
                return await mig.status(conn)
        finally:
            await kernel.close()

    st = run(_go())
    if as_json:
        echo_json(st.as_dict())
    else:
        click.echo(
            f"current {st.current or 'none'}, latest {st.latest}"
            + (f", pending {', '.join(st.pending)}" if st.pending else "")
            + (f", modified {', '.join(st.modified)}" if st.modified else "")
            + ("" if st.pgqueuer_installed else ", pgqueuer not installed")
        )
    sys.exit(0 if st.ok else 1)


@db.command("url", context_settings=CONTEXT)
@handle_errors
def db_url() -> None:
    """Print the database URL (starting the embedded server if needed)."""
    from agentos.cli.common import announce_embedded_start
    from agentos.kernel.db import resolve_database_url

    s = settings()
    announce_embedded_start(s)
    click.echo(resolve_database_url(s))


@db.command("psql", context_settings={**CONTEXT, "ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@handle_errors
def db_psql(args: tuple[str, ...]) -> None:
    """Open psql on the database (search_path agentos); ARGS go to psql."""
    from agentos.cli.common import announce_embedded_start
    from agentos.kernel.db import resolve_database_url

    s = settings()
    announce_embedded_start(s)
    url = resolve_database_url(s)
    psql = shutil.which("psql")
    if psql is None:
        from agentos.kernel.embedded import binary

        candidate = binary("psql")
        psql = str(candidate) if candidate.exists() else None
    if psql is None:
        fail("psql not found (install the PostgreSQL client)")
    env = {**os.environ, "PGOPTIONS": "-c search_path=agentos,public"}
    os.execvpe(psql, [psql, url, *args], env)  # type: ignore[arg-type]
