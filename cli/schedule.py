"""`agentos schedule`: cron schedules the kernel fires once per tick."""

from __future__ import annotations

from typing import Any

import click
from agentos.cli.common import (
    CONTEXT,
    check_role_known,
    echo_json,
    handle_errors,
    read_text,
    safe,
    with_conn,
)


@click.group(context_settings=CONTEXT)
def schedule() -> None:
    """Cron schedules that wake agents (each tick fires once, cluster-wide)."""


@schedule.command("add", context_settings=CONTEXT)
@click.argument("name")
@click.argument("cron")
@click.option("--role", default=None, help="Wake an agent of this role.")
@click.option("--agent", default=None, help="Wake this agent.")
@click.option("--activation", default="heartbeat", show_default=True, help="What kind of work.")
@click.option(
    "--precondition",
    default=None,
    help="SQL boolean expression, run read-only at each tick; it fires only when true "
    "(- reads it from stdin).",
)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def schedule_add(
    name: str,
    cron: str,
    role: str | None,
    agent: str | None,
    activation: str,
    precondition: str | None,
    as_json: bool,
) -> None:
    """Add a schedule, e.g. `agentos schedule add beat '*/5 * * * *' --role orchestrator`."""
    from agentos.kernel import schedules

    if precondition is not None:
        precondition = read_text(precondition, "--precondition")

    async def _go(conn: Any) -> Any:
        if role is not None and agent is None:
            await check_role_known(conn, role)
        return await schedules.add_schedule(
            conn,
            name=name,
            cron=cron,
            role=role,
            agent=agent,
            activation=activation,
            precondition=precondition,
        )

    sc = with_conn(_go)
    if as_json:
        echo_json(sc)
    else:
        click.echo(
            f"schedule {sc.name} ({sc.cron}) next fires at {sc.next_fire_at:%Y-%m-%d %H:%M:%S%z}"
        )


@schedule.command("list", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def schedule_list(as_json: bool) -> None:
    """List schedules."""
    from agentos.kernel import schedules

    rows = with_conn(lambda conn: schedules.list_schedules(conn))
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no schedules")
    for sc in rows:
        target = f"role {sc.target_role}" if sc.target_role else f"agent {sc.target_agent}"
        cond = f" if {safe(sc.precondition)}" if sc.precondition else ""
        off = "" if sc.enabled else " (disabled)"
        click.echo(
            f"{safe(sc.name):<20} {safe(sc.cron):<15} {sc.activation} -> {target}{cond}; "
            f"next {sc.next_fire_at:%Y-%m-%d %H:%M:%S}{off}"
        )


@schedule.command("remove", context_settings=CONTEXT)
@click.argument("name")
@handle_errors
def schedule_remove(name: str) -> None:
    """Remove a schedule by name (or id)."""
    from agentos.kernel import schedules

    sc = with_conn(lambda conn: schedules.remove_schedule(conn, name))
    click.echo(f"removed schedule {sc.name}")
