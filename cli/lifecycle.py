"""`agentos start`, `stop` and `status`: the local team's lifecycle."""

from __future__ import annotations

import sys
from typing import Any

import click
from agentos.cli.common import (
    CONTEXT,
    echo_json,
    fail,
    handle_errors,
    open_kernel,
    run,
    settings,
    setup_logging,
)


@click.command(context_settings=CONTEXT)
@click.option("--workers", type=click.IntRange(0, 64), default=2, show_default=True)
@click.option("--reviewers", type=click.IntRange(0, 16), default=1, show_default=True)
@click.option("--orchestrators", type=click.IntRange(0, 4), default=1, show_default=True)
@click.option(
    "--demo",
    is_flag=True,
    help="Run the team on the built-in scripted model and give it a demo goal.",
)
@click.option("--detach", is_flag=True, help="Run in the background; `agentos stop` ends it.")
@click.option(
    "--keep-db", is_flag=True, help="Leave the embedded database running when the team stops."
)
@click.option(
    "--process-per-role",
    is_flag=True,
    help="One process per role instead of one for the whole team (a crash stops one role).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=0,
    envvar="AGENTOS_METRICS_PORT",
    help="Serve Prometheus /metrics of the supervisor and its agents on this port (0: off).",
)
@handle_errors
def start(
    workers: int,
    reviewers: int,
    orchestrators: int,
    demo: bool,
    detach: bool,
    keep_db: bool,
    process_per_role: bool,
    metrics_port: int,
) -> None:
    """Start the database, the kernel and the team (orchestrator, workers, reviewer)."""
    from agentos.cli import supervisor

    s = settings()
    running = supervisor.read_pidfile(s)
    if running:
        fail(f"agentos is already running (pid {running['pid']}); `agentos stop` ends it")
    argv = (
        [
            "start",
            f"--workers={workers}",
            f"--reviewers={reviewers}",
            f"--orchestrators={orchestrators}",
        ]
        + (["--demo"] if demo else [])
        + (["--keep-db"] if keep_db else [])
        + (["--process-per-role"] if process_per_role else [])
        + ([f"--metrics-port={metrics_port}"] if metrics_port else [])
    )
    if detach:
        try:
            pid = supervisor.detach(s, argv)
        except RuntimeError as exc:
            fail(str(exc))
        click.echo(
            f"agentos started in the background (pid {pid}); logs: "
            f"{s.run_dir / 'agentos.log'}; `agentos stop` ends it"
        )
        return
    setup_logging(s.log_level, s.log_format)
    children = supervisor.team(
        orchestrators=orchestrators,
        workers=workers,
        reviewers=reviewers,
        demo=demo,
        process_per_role=process_per_role,
    )
    sup = supervisor.Supervisor(
        s, children=children, demo=demo, keep_db=keep_db, metrics_port=metrics_port
    )
    sys.exit(run(sup.run()))


@click.command(context_settings=CONTEXT)
@click.option("--keep-db", is_flag=True, help="Leave the embedded database running.")
@handle_errors
def stop(keep_db: bool) -> None:
    """Stop what `agentos start` started, the embedded database included."""
    from agentos.cli import supervisor
    from agentos.kernel import embedded

    s = settings()
    pid = supervisor.stop_supervisor(s, keep_db=keep_db)
    click.echo(f"stopped agentos (pid {pid})" if pid else "agentos was not running")
    if s.uses_embedded and not keep_db:
        if embedded.stop(s.pgdata):
            click.echo(f"stopped the embedded database ({s.pgdata})")


@click.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def status(as_json: bool) -> None:
    """Show what runs: supervisor, database, schema, sessions and the board."""
    from agentos.cli import supervisor
    from agentos.kernel import embedded

    s = settings()
    info = supervisor.read_pidfile(s)
    out: dict[str, Any] = {
        "running": info is not None,
        "supervisor": info,
        "database": "external" if not s.uses_embedded else "embedded",
    }
    if s.uses_embedded and embedded.running_server(s.pgdata) is None:
        out.update(database_up=False, sessions=[], board={})
    else:

        async def _query() -> None:
            from agentos.kernel import migrate as mig
            from agentos.kernel import views

            kernel = await open_kernel(migrate=False, pool_max=1)
            try:
                async with kernel.connection() as conn:
                    out["schema"] = (await mig.status(conn)).as_dict()
                    if out["schema"]["current"]:
                        out["sessions"] = await views.running_sessions(conn)
                        out["board"] = await views.board_summary(conn)
                out["database_up"] = True
            finally:
                await kernel.close()

        run(_query())
    if as_json:
        echo_json(out)
        return
    click.echo(f"agentos:  {'running (pid %s)' % info['pid'] if info else 'not running'}")
    click.echo(f"database: {out['database']}, {'up' if out.get('database_up') else 'down'}")
    if "schema" in out:
        sc = out["schema"]
        click.echo(
            f"schema:   {sc['current'] or 'empty'} (latest {sc['latest']})"
            + ("" if sc["ok"] else ", pending: " + ", ".join(sc["pending"]))
        )
    for sess in out.get("sessions", []):
        click.echo(
            f"session:  {sess['role']} pid {sess['pid']} on {sess['host']}: "
            f"{', '.join(sess['agents'])}"
        )
    if out.get("board"):
        click.echo(
            "tasks:    " + ", ".join(f"{k} {v}" for k, v in out["board"].items() if v)
            if any(out["board"].values())
            else "tasks:    none"
        )
