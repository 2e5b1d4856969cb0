"""`agentos schedule`: cron schedules the kernel fires once per tick.

A schedule wakes a role or an agent (an activation), or, with `--task TITLE`, creates a
task from a template at each tick (recurring tasks).
"""

from __future__ import annotations

import json
from typing import Any

import click
from agentos.cli.common import (
    CONTEXT,
    budget_usd,
    check_role_known,
    echo_json,
    fail,
    handle_errors,
    read_text,
    safe,
    with_conn,
)


@click.group(context_settings=CONTEXT)
def schedule() -> None:
    """Cron schedules that wake agents or create tasks (each tick fires once, cluster-wide)."""


@schedule.command("add", context_settings=CONTEXT)
@click.argument("name")
@click.argument("cron")
@click.option(
    "--role", default=None, help="Wake an agent of this role (with --task: the task's role)."
)
@click.option("--agent", default=None, help="Wake this agent (with --task: assign it the task).")
@click.option("--activation", default=None, help="What kind of work.  [default: heartbeat]")
@click.option(
    "--precondition",
    default=None,
    help="SQL boolean expression, run read-only at each tick; it fires only when true "
    "(- reads it from stdin).",
)
@click.option(
    "--task",
    "title",
    default=None,
    help="Create a task with this title at each tick instead of waking an agent "
    "(role: --role, default worker).",
)
@click.option(
    "--description", "-d", default=None, help="With --task: the task's description (- for stdin)."
)
@click.option(
    "--acceptance", "-a", default=None, help="With --task: its acceptance criteria (- for stdin)."
)
@click.option(
    "--priority", "-p", type=click.IntRange(-1000, 1000), default=None, help="With --task."
)
@click.option(
    "--budget",
    callback=budget_usd,
    default=None,
    metavar="USD",
    help="With --task: USD the task may spend on LLM calls (default: the role's).",
)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def schedule_add(
    name: str,
    cron: str,
    role: str | None,
    agent: str | None,
    activation: str | None,
    precondition: str | None,
    title: str | None,
    description: str | None,
    acceptance: str | None,
    priority: int | None,
    budget: float | None,
    as_json: bool,
) -> None:
    """Add a schedule that wakes a role or an agent, or creates a task at each tick.

    \b
    agentos schedule add beat '*/5 * * * *' --role orchestrator
    agentos schedule add triage '0 9 * * 1-5' --task "Triage yesterday's failures" \\
        --role orchestrator --priority 5 --budget 2
    """
    from agentos.kernel import schedules

    stdin = [
        opt
        for opt, v in (
            ("--precondition", precondition),
            ("--description", description),
            ("--acceptance", acceptance),
        )
        if v == "-"
    ]
    if len(stdin) > 1:
        fail(f"only one of {' and '.join(stdin)} can be read from stdin", 2)
    template: dict[str, Any] | None = None
    extras = {
        "--description": description,
        "--acceptance": acceptance,
        "--priority": priority,
        "--budget": budget,
    }
    if title is None:
        given = [opt for opt, value in extras.items() if value is not None]
        if given:
            fail(f"{given[0]} goes with --task (a schedule that creates a task)", 2)
    else:
        if activation is not None:
            fail("--activation does not go with --task (a task schedule creates a task)", 2)
        template = {"title": title}
        if description is not None:
            template["description"] = read_text(description, "--description")
        if acceptance is not None:
            template["acceptance"] = read_text(acceptance, "--acceptance")
        if priority is not None:
            template["priority"] = priority
        if budget is not None:
            template["budget_usd"] = budget
    if precondition is not None:
        precondition = read_text(precondition, "--precondition")

    async def _go(conn: Any) -> Any:
        if template is not None and agent is None:
            await check_role_known(conn, role or "worker")
        elif role is not None and agent is None:
            await check_role_known(conn, role)
        return await schedules.add_schedule(
            conn,
            name=name,
            cron=cron,
            role=role,
            agent=agent,
            activation=activation or "heartbeat",
            precondition=precondition,
            task=template,
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
        what = sc.activation if sc.task_template is None else _template(sc.task_template)
        click.echo(
            f"{safe(sc.name):<20} {safe(sc.cron):<15} {what} -> {target}{cond}; "
            f"next {sc.next_fire_at:%Y-%m-%d %H:%M:%S}{off}"
        )


def _template(t: dict[str, Any]) -> str:
    """A task template on one line: task "title" (p5, $2, described, with acceptance)."""
    title = str(t.get("title", ""))
    short = title if len(title) <= 60 else title[:59] + "…"
    parts = []
    if t.get("priority"):
        parts.append(f"p{t['priority']}")
    if isinstance(t.get("budget_usd"), int | float):
        parts.append(f"${t['budget_usd']:g}")
    if t.get("assignee"):
        parts.append(f"role {t.get('role', 'worker')}")
    if t.get("description"):
        parts.append("described")
    if t.get("acceptance"):
        parts.append("with acceptance")
    extra = f" ({', '.join(parts)})" if parts else ""
    return f"task {safe(json.dumps(short, ensure_ascii=False))}{extra}"


@schedule.command("remove", context_settings=CONTEXT)
@click.argument("name")
@handle_errors
def schedule_remove(name: str) -> None:
    """Remove a schedule by name (or id)."""
    from agentos.kernel import schedules

    sc = with_conn(lambda conn: schedules.remove_schedule(conn, name))
    click.echo(f"removed schedule {sc.name}")
