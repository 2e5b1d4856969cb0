"""`agentos agent`: run agents, a whole team, list them."""

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
    safe,
    setup_logging,
)


@click.group(context_settings=CONTEXT)
def agent() -> None:
    """Agents and their sessions."""


@agent.command("run", context_settings=CONTEXT)
@click.option(
    "--role", "-r", required=True, help="orchestrator, worker, reviewer, or a custom role."
)
@click.option("--name", "-n", default=None, help="Agent name (NAME-1..N with --concurrency).")
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 64),
    default=None,
    help="Agents hosted by this process (default: the role's).",
)
@click.option(
    "--health-port",
    type=click.IntRange(0, 65535),
    default=None,
    envvar="AGENTOS_HEALTH_PORT",
    help="Serve /livez and /readyz on this port (0: off).",
)
@handle_errors
def agent_run(
    role: str, name: str | None, concurrency: int | None, health_port: int | None
) -> None:
    """Run agents of a role in this process until Ctrl-C (leases are released)."""
    from agentos.agents.config import AgentSettings
    from agentos.kernel.models import NAME_RE

    if name is not None and not NAME_RE.match(name):
        fail(f"bad agent name {name!r} (lowercase letters, digits, . _ -)", 2)
    s = AgentSettings()
    setup_logging(s.log_level, s.log_format)
    from agentos.agents.runner import serve_role

    sys.exit(
        run(
            serve_role(
                s, role_name=role, name=name, concurrency=concurrency, health_port=health_port
            )
        )
    )


@agent.command("team", context_settings=CONTEXT)
@click.option("--orchestrators", type=click.IntRange(0, 8), default=1, show_default=True)
@click.option("--workers", type=click.IntRange(0, 64), default=2, show_default=True)
@click.option("--reviewers", type=click.IntRange(0, 64), default=1, show_default=True)
@click.option(
    "--health-port",
    type=click.IntRange(0, 65535),
    default=0,
    envvar="AGENTOS_HEALTH_PORT",
    help="Serve /livez and /readyz on this port (0: off).",
)
@handle_errors
def agent_team(orchestrators: int, workers: int, reviewers: int, health_port: int) -> None:
    """Run a whole local team in this one process (what `agentos start` runs)."""
    from agentos.agents.config import AgentSettings, team_roles
    from agentos.agents.runner import serve_team

    s = AgentSettings()
    setup_logging(s.log_level, s.log_format)
    roles = team_roles(orchestrators=orchestrators, workers=workers, reviewers=reviewers)
    if not roles:
        fail("a team needs at least one agent", 2)
    sys.exit(run(serve_team(s, roles, health_port=health_port)))


@agent.command("list", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def agent_list(as_json: bool) -> None:
    """Registered agents (alive or not) and live sessions."""
    from agentos.kernel import views

    async def _go() -> tuple[list[Any], list[Any]]:
        kernel = await open_kernel()
        try:
            async with kernel.connection() as conn:
                return await views.agents_and_sessions(conn)
        finally:
            await kernel.close()

    agents, sess = run(_go())
    if as_json:
        echo_json({"agents": agents, "sessions": sess})
        return
    if not agents:
        click.echo("no agents registered")
    for a in agents:
        state = a["status"] if a["alive"] else "dead" if a["status"] != "offline" else "offline"
        beat = a["last_heartbeat"].strftime("%H:%M:%S") if a["last_heartbeat"] else "-"
        cur = (
            f"#{a['current_task_id']} {safe(a['current_task'] or '')}"
            if a["current_task_id"]
            else "-"
        )
        click.echo(f"{a['name']:<16} {a['role']:<13} {state:<8} beat {beat}  {cur}")
    for s_ in sess:
        click.echo(f"session {s_['id']} {s_['role']} pid {s_['pid']} on {s_['host']}")
