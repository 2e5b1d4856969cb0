"""`agentos agent`: run agents, a whole team, list them; agents as data (create, show,
edit, duplicate, rm, memory)."""

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
    person,
    read_text,
    run,
    safe,
    setup_logging,
    with_conn,
)


@click.group(context_settings=CONTEXT)
def agent() -> None:
    """Agents: run them, and manage them as data (create, show, edit, duplicate, rm)."""


@agent.command("run", context_settings=CONTEXT)
@click.option(
    "--role", "-r", required=True, help="orchestrator, worker, reviewer, or a custom role."
)
@click.option("--name", "-n", default=None, help="Agent name (NAME-1..N with --concurrency).")
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 1000),
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


# ------------------------------------------------------------- agents as data --


def _print_agent(a: Any) -> None:
    state = a.status if a.alive else ("dead" if a.status != "offline" else "offline")
    click.echo(f"{a.name} ({a.role}){'' if a.defined else ' [registered by its process]'}")
    if a.description:
        click.echo(f"  description: {safe(a.description, keep_newlines=True)}")
    click.echo(f"  model: {safe(_model_line(a))}")
    where = f" in pid {a.pid} on {safe(a.host or '')}" if a.alive and a.pid else ""
    click.echo(f"  status: {state}{where}")
    click.echo(
        "  current task: "
        + (f"#{a.current_task_id} {safe(a.current_task or '')}" if a.current_task_id else "-")
    )
    if a.work:
        click.echo("  holds: " + ", ".join(f"#{w['id']} {w['status']}" for w in a.work))
    click.echo(f"  cost today: ${float(a.cost_today):.4f} ({a.calls_today} calls)")
    skills = [
        f"{s} ({safe(a.skill_descriptions[s])})" if a.skill_descriptions.get(s) else s
        for s in a.skills
    ]
    click.echo(f"  skills: {', '.join(skills) if skills else '-'}")
    if a.instructions:
        click.echo(f"  instructions: {safe(a.instructions, keep_newlines=True)}")
    memory = a.memory.strip()
    click.echo("  memory: " + (f"{len(a.memory)} characters" if memory else "(empty)"))
    if memory:
        for line in safe(memory, keep_newlines=True).splitlines()[:10]:
            click.echo(f"    {line}")
        if len(memory.splitlines()) > 10:
            click.echo(f"    ... (agentos agent memory show {a.name})")


def _role_model(a: Any) -> str | None:
    """The model the agent's role gives it here (AGENTOS_MODEL and AGENTOS_DEMO count)."""
    from agentos.agents.config import AgentSettings, load_role
    from agentos.kernel.errors import BadInput

    try:
        return load_role(a.role, AgentSettings()).model
    except BadInput:
        # no role file here: what its process registered, if anything
        return str(a.model) if a.model else None


def _model_line(a: Any) -> str:
    from agentos.agents.config import AgentSettings, load_role, with_agent_model
    from agentos.kernel.errors import BadInput

    if not a.model_override:
        return f"{_role_model(a) or 'unknown'} (the role's)"
    try:
        runs = with_agent_model(
            load_role(a.role, AgentSettings()), AgentSettings(), a.model_override
        )
    except BadInput:
        return f"{a.model_override} (its own)"
    if runs.model != a.model_override:
        return f"{runs.model} (AGENTOS_DEMO; its own: {a.model_override})"
    return f"{a.model_override} (its own)"


async def _check_role(conn: Any, role: str) -> None:
    from agentos.cli.common import check_role_known

    await check_role_known(conn, role)


@agent.command("create", context_settings=CONTEXT)
@click.argument("name")
@click.option("--role", "-r", required=True, help="The role it works as (worker, reviewer, ...).")
@click.option("--model", "-m", default=None, help="Its own model (default: the role's).")
@click.option("--description", "-d", default="", help="What it is for, for people.")
@click.option(
    "--instructions",
    "-i",
    default="",
    help="Added to its role's system prompt (- reads them from stdin).",
)
@click.option("--skill", "skills", multiple=True, help="A skill of the library (repeatable).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def agent_create(
    name: str,
    role: str,
    model: str | None,
    description: str,
    instructions: str,
    skills: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create an agent: processes of its role (`agentos start`, role pods) run it."""
    from agentos.kernel import roster

    text = read_text(instructions, "--instructions")

    async def _go(conn: Any) -> Any:
        await _check_role(conn, role)
        return await roster.create_agent(
            conn,
            name=name,
            role=role,
            model=model,
            description=description,
            instructions=text,
            skills=list(skills),
            created_by=person(),
        )

    a = with_conn(_go)
    if as_json:
        echo_json(a)
    else:
        click.echo(
            f"created agent {a.name} ({a.role}"
            + (f", model {a.model_override}" if a.model_override else "")
            + "); a running team takes it within seconds, or `agentos start`"
        )


@agent.command("show", context_settings=CONTEXT)
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def agent_show(name: str, as_json: bool) -> None:
    """An agent: role, model, status, current task, memory, skills, cost today."""
    from agentos.kernel import roster

    a = with_conn(lambda conn: roster.get_agent(conn, name))
    if as_json:
        echo_json({**a.model_dump(mode="json"), "role_model": _role_model(a)})
    else:
        _print_agent(a)


@agent.command("edit", context_settings=CONTEXT)
@click.argument("name")
@click.option("--role", "-r", default=None, help="Move it to another role (when it holds no work).")
@click.option("--model", "-m", default=None, help="Its own model; '' goes back to the role's.")
@click.option("--description", "-d", default=None, help="What it is for.")
@click.option(
    "--instructions", "-i", default=None, help="Replace its instructions ('' clears, - stdin)."
)
@click.option("--skill", "add_skills", multiple=True, help="Add a skill (repeatable).")
@click.option("--drop-skill", "drop_skills", multiple=True, help="Drop a skill (repeatable).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def agent_edit(
    name: str,
    role: str | None,
    model: str | None,
    description: str | None,
    instructions: str | None,
    add_skills: tuple[str, ...],
    drop_skills: tuple[str, ...],
    as_json: bool,
) -> None:
    """Change an agent; it runs with the change from its next task."""
    from agentos.kernel import roster

    if all(v is None for v in (role, model, description, instructions)) and not (
        add_skills or drop_skills
    ):
        fail("nothing to change (see `agentos agent edit --help`)", 2)
    text = read_text(instructions, "--instructions") if instructions is not None else None

    async def _go(conn: Any) -> Any:
        if role is not None:
            await _check_role(conn, role)
        return await roster.edit_agent(
            conn,
            name,
            actor=person(),
            role=role,
            model=roster.UNSET if model is None else model,
            description=description,
            instructions=text,
            add_skills=list(add_skills),
            drop_skills=list(drop_skills),
        )

    a = with_conn(_go)
    if as_json:
        echo_json(a)
    else:
        click.echo(
            f"agent {a.name} ({a.role}, model "
            f"{a.model_override or 'the role' + chr(39) + 's'}) changed"
        )


@agent.command("duplicate", context_settings=CONTEXT)
@click.argument("name")
@click.argument("new")
@click.option("--no-memory", is_flag=True, help="Start the copy with an empty memory.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def agent_duplicate(name: str, new: str, no_memory: bool, as_json: bool) -> None:
    """A new agent like NAME: same role, model, instructions, skills (and memory)."""
    from agentos.kernel import roster

    a = with_conn(
        lambda conn: roster.duplicate_agent(conn, name, new, actor=person(), memory=not no_memory)
    )
    if as_json:
        echo_json(a)
    else:
        click.echo(f"created agent {a.name} ({a.role}) as a copy of {name}")


@agent.command("rm", context_settings=CONTEXT)
@click.argument("name")
@handle_errors
def agent_rm(name: str) -> None:
    """Remove an agent (refused while it holds work); its history stays in the log."""
    from agentos.kernel import roster

    with_conn(lambda conn: roster.remove_agent(conn, name, actor=person()))
    click.echo(f"removed agent {name}")


@agent.group("memory", context_settings=CONTEXT)
def agent_memory() -> None:
    """An agent's memory: the notes it keeps across tasks and restarts."""


@agent_memory.command("show", context_settings=CONTEXT)
@click.argument("name")
@handle_errors
def agent_memory_show(name: str) -> None:
    """Print the agent's memory."""
    from agentos.kernel import memory

    text = with_conn(lambda conn: memory.read_memory(conn, name))
    if text:
        click.echo(safe(text, keep_newlines=True), nl=not text.endswith("\n"))


@agent_memory.command("edit", context_settings=CONTEXT)
@click.argument("name")
@handle_errors
def agent_memory_edit(name: str) -> None:
    """Rewrite the agent's memory: in $EDITOR on a terminal, else from stdin."""
    from agentos.cli.common import decode_text
    from agentos.kernel import memory

    current = with_conn(lambda conn: memory.read_memory(conn, name))
    if sys.stdin.isatty():
        edited = click.edit(current, require_save=True, extension=".md")
        if edited is None:
            click.echo(f"memory of {name} unchanged")
            return
        text = edited
    else:
        text = decode_text(sys.stdin.buffer, "the memory (stdin)")
    with_conn(lambda conn: memory.write_memory(conn, name, text))
    click.echo(f"memory of {name} rewritten ({len(text)} characters)")
