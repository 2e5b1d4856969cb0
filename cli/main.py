"""agentos: the command line of AgentOS.

Noun-verb commands; exit 0 on success, 1 on failure, 2 on bad input, 3 when a named
thing does not exist, 4 on a lost lease, 5 when the database is unreachable.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import click
from agentos.cli.common import (
    ID,
    budget_usd,
    check_role_known,
    echo_json,
    fail,
    handle_errors,
    open_kernel,
    read_text,
    run,
    safe,
    settings,
    setup_logging,
    with_conn,
)

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
STATUSES = ["inbox", "assigned", "in_progress", "review", "done", "blocked", "failed", "cancelled"]


def _version() -> str:
    try:
        return version("agentos")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


@click.group(context_settings=CONTEXT)
@click.version_option(_version(), "-V", "--version", prog_name="agentos")
def cli() -> None:
    """AgentOS: a team of AI agents whose whole state lives in PostgreSQL.

    With no AGENTOS_DATABASE_URL an embedded PostgreSQL server runs under AGENTOS_HOME.
    """


# ------------------------------------------------------------------ start/stop --


@cli.command(context_settings=CONTEXT)
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
@handle_errors
def start(
    workers: int,
    reviewers: int,
    orchestrators: int,
    demo: bool,
    detach: bool,
    keep_db: bool,
    process_per_role: bool,
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
    sup = supervisor.Supervisor(s, children=children, demo=demo, keep_db=keep_db)
    sys.exit(run(sup.run()))


@cli.command(context_settings=CONTEXT)
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


@cli.command(context_settings=CONTEXT)
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


# -------------------------------------------------------------------------- db --


@cli.group(context_settings=CONTEXT)
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


# ------------------------------------------------------------------------ task --


@cli.group(context_settings=CONTEXT)
def task() -> None:
    """Create, list, show, cancel and retry tasks."""


def _print_task(t: Any) -> None:
    click.echo(f"#{t.id} [{t.status}] {safe(t.title)}")
    click.echo(
        f"  role {t.role}, priority {t.priority}, assignee {t.assignee or '-'}, "
        f"attempts {t.attempts}/{t.max_attempts}"
    )
    if t.parent_id:
        click.echo(f"  parent #{t.parent_id}")
    if t.depends_on:
        click.echo(f"  depends on {', '.join('#%d' % d for d in t.depends_on)}")
    if t.lease_agent:
        click.echo(f"  held by {t.lease_agent} until {t.lease_expires_at:%H:%M:%S}")
    if t.branch:
        click.echo(f"  branch {safe(t.branch)}")
    # Agents write results and errors (tool output with colour codes, say): escaped, so
    # nothing stored can move the cursor or rewrite a line on the reader's terminal.
    if t.description:
        click.echo(f"  description: {safe(t.description, keep_newlines=True)}")
    if t.acceptance:
        click.echo(f"  acceptance: {safe(t.acceptance, keep_newlines=True)}")
    if t.result:
        click.echo(f"  result: {safe(t.result, keep_newlines=True)}")
    if t.error:
        click.echo(f"  error: {safe(t.error, keep_newlines=True)}")


@task.command("create", context_settings=CONTEXT)
@click.argument("title")
@click.option(
    "--description", "-d", default="", help="What to do, in detail (- reads it from stdin)."
)
@click.option(
    "--acceptance", "-a", default="", help="How a reviewer knows it is done (- for stdin)."
)
@click.option(
    "--role",
    "-r",
    default="worker",
    show_default=True,
    help="Role that takes it: a shipped role, one defined in AGENTOS_HOME/roles or "
    "AGENTOS_ROLES_DIR, or one a registered agent has.",
)
@click.option("--assign", "assignee", default=None, help="A specific agent to take it.")
@click.option("--priority", "-p", type=click.IntRange(-1000, 1000), default=0, show_default=True)
@click.option("--parent", type=ID, default=None, help="Parent task id.")
@click.option(
    "--depends-on",
    type=ID,
    multiple=True,
    help="A task id that must be done first (repeatable).",
)
@click.option("--max-attempts", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@handle_errors
def task_create(
    title: str,
    description: str,
    acceptance: str,
    role: str,
    assignee: str | None,
    priority: int,
    parent: int | None,
    depends_on: tuple[int, ...],
    max_attempts: int,
    as_json: bool,
) -> None:
    """Create a task; ready tasks wake an agent of the role at once."""
    from agentos.kernel import tasks

    if description == "-" and acceptance == "-":
        fail("only one of --description and --acceptance can be read from stdin", 2)
    description = read_text(description, "--description")
    acceptance = read_text(acceptance, "--acceptance")

    async def _go(conn: Any) -> Any:
        if assignee is None:
            # An assigned task goes to its agent whatever the role; otherwise a role
            # nobody runs would leave the task waiting forever.
            await check_role_known(conn, role)
        return await tasks.create_task(
            conn,
            created_by=os.environ.get("USER", "cli"),
            title=title,
            description=description,
            acceptance=acceptance,
            role=role,
            assignee=assignee,
            priority=priority,
            parent_id=parent,
            depends_on=list(depends_on),
            max_attempts=max_attempts,
        )

    t = with_conn(_go)
    if as_json:
        echo_json(t)
    else:
        click.echo(f"created task #{t.id} [{t.status}] {safe(t.title)}")


@task.command("list", context_settings=CONTEXT)
@click.option("--status", "-s", type=click.Choice(STATUSES), default=None)
@click.option("--role", "-r", default=None)
@click.option("--limit", type=click.IntRange(1, 100000), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list).")
@handle_errors
def task_list(status: str | None, role: str | None, limit: int, as_json: bool) -> None:
    """List tasks in board order."""
    from agentos.kernel import tasks

    rows = with_conn(lambda conn: tasks.list_tasks(conn, status=status, role=role, limit=limit))
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no tasks")
    for t in rows:
        who = t.lease_agent or t.assignee or "-"
        click.echo(
            f"#{t.id:<5} {t.status:<11} p{t.priority:<4} {t.role:<12} {who:<14} {safe(t.title)}"
        )


def _one_task(action: str, task_id: int, as_json: bool, budget: float | None = None) -> None:
    from agentos.kernel import tasks

    actor = os.environ.get("USER", "cli")

    async def _go(conn: Any) -> Any:
        if action == "show":
            return await tasks.get_task(conn, task_id)
        if action == "cancel":
            return await tasks.cancel(conn, task_id, actor=actor)
        return await tasks.retry(conn, task_id, actor=actor, budget_usd=budget)

    t = with_conn(_go)
    if as_json:
        echo_json(t)
    elif action == "show":
        _print_task(t)
    else:
        click.echo(f"task #{t.id} is now {t.status}")


@task.command("show", context_settings=CONTEXT)
@click.argument("task_id", type=ID)
@click.option("--steps", is_flag=True, help="Also print the agents' steps (the transcript).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def task_show(task_id: int, steps: bool, as_json: bool) -> None:
    """Show one task, its cost, subtasks and (with --steps) the agents' transcript."""
    from agentos.kernel import tasks, views

    async def _go(conn: Any) -> Any:
        t = await tasks.get_task(conn, task_id)
        cost = await views.task_cost(conn, task_id)
        subs = await tasks.list_tasks(conn, parent_id=task_id)
        rows = await views.transcript(conn, task_id) if steps or as_json else []
        return t, cost, subs, rows

    t, cost, subs, rows = with_conn(_go)
    if as_json:
        echo_json(
            {
                **t.model_dump(mode="json"),
                "cost": cost,
                "subtasks": [s_.id for s_ in subs],
                "steps": rows if steps else len(rows),
            }
        )
        return
    _print_task(t)
    click.echo(
        f"  llm: {cost['calls']} calls, {cost['tokens']} tokens, ${float(cost['cost_usd']):.4f}"
        + (f" of ${t.budget_usd:.2f}" if t.budget_usd else "")
    )
    for s_ in subs:
        click.echo(f"  subtask #{s_.id} [{s_.status}] {safe(s_.title)}")
    for r in rows:
        c = r["content"]
        if r["kind"] == "llm":
            calls = ", ".join(
                tc.get("function", {}).get("name", "?") for tc in c.get("tool_calls") or []
            )
            text = (c.get("content") or "").strip().replace("\n", " ")[:100]
            detail = f"{text} -> {calls}" if calls else text
        elif r["kind"] == "tool_call":
            detail = f"{r['tool_name']} {json.dumps(c.get('arguments'))[:100]}"
        elif r["kind"] == "tool_result":
            out = str(c.get("output", "")).strip().replace("\n", " ")
            detail = f"{r['tool_name']} {'ok' if c.get('ok') else 'ERROR'}: {out[:100]}"
        else:
            detail = str(c.get("text", "")).strip().replace("\n", " ")[:100]
        click.echo(
            f"  {r['stage']:<6} {r['seq']:>3} {r['agent']:<14} {r['kind']:<11} {safe(detail)}"
        )


@task.command("cancel", context_settings=CONTEXT)
@click.argument("task_id", type=ID)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def task_cancel(task_id: int, as_json: bool) -> None:
    """Cancel a task; an agent working on it stops between steps."""
    _one_task("cancel", task_id, as_json)


@task.command("retry", context_settings=CONTEXT)
@click.argument("task_id", type=ID)
@click.option(
    "--budget",
    callback=budget_usd,
    metavar="USD",
    default=None,
    help="Set the task's budget to this many USD as part of the retry.",
)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def task_retry(task_id: int, budget: float | None, as_json: bool) -> None:
    """Put a failed, blocked or cancelled task back in the queue (all or nothing)."""
    _one_task("retry", task_id, as_json, budget=budget)


# ----------------------------------------------------------------------- agent --


@cli.group(context_settings=CONTEXT)
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


# ------------------------------------------------------------------------- log --


@cli.command("log", context_settings=CONTEXT)
@click.option("--follow", "-f", is_flag=True, help="Stream new activity as it happens (NOTIFY).")
@click.option("--agent", "actor", default=None, help="Only this agent (or actor).")
@click.option("--task", "task_id", type=ID, default=None, help="Only this task.")
@click.option("--limit", "-n", type=click.IntRange(1, 100000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@handle_errors
def log_cmd(
    follow: bool, actor: str | None, task_id: int | None, limit: int, as_json: bool
) -> None:
    """The activity log (the audit trail of everything)."""
    from agentos.cli.logview import show_log

    try:
        run(show_log(follow=follow, actor=actor, task_id=task_id, limit=limit, as_json=as_json))
    except KeyboardInterrupt:
        pass


# --------------------------------------------------------------------- message --


@cli.group(context_settings=CONTEXT)
def message() -> None:
    """Talk to the team."""


@message.command("send", context_settings=CONTEXT)
@click.argument("text")
@click.option("--to", "to_agent", default=None, help="An agent; it wakes and answers.")
@click.option("--task", "task_id", type=ID, default=None, help="A task's thread.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def message_send(text: str, to_agent: str | None, task_id: int | None, as_json: bool) -> None:
    """Send a message to an agent or onto a task's thread (TEXT - reads it from stdin)."""
    from agentos.kernel.messages import send_message

    if to_agent is None and task_id is None:
        fail("give --to AGENT or --task ID", 2)
    text = read_text(text, "the message")

    m = with_conn(
        lambda conn: send_message(
            conn,
            body=text,
            to_agent=to_agent,
            task_id=task_id,
            from_agent=None,
            kind="question" if to_agent else "comment",
        )
    )
    if as_json:
        echo_json(m)
    else:
        click.echo(f"sent message #{m.id}")


# ----------------------------------------------------------------------- skill --


@cli.group(context_settings=CONTEXT)
def skill() -> None:
    """The skills library: markdown documents agents can list and read."""


@skill.command("add", context_settings=CONTEXT)
@click.argument("name")
@click.argument("file", type=click.File("rb"))
@click.option("--description", "-d", default="")
@click.option("--replace", is_flag=True, help="Replace an existing skill.")
@handle_errors
def skill_add(name: str, file: Any, description: str, replace: bool) -> None:
    """Add a skill from a markdown FILE (- for stdin)."""
    from agentos.cli.common import decode_text
    from agentos.kernel import skills
    from agentos.kernel.models import one_line, plain_text

    body = decode_text(file, f"skill file {file.name}")
    try:
        body = plain_text(body)
    except ValueError as exc:
        fail(f"skill file {file.name} {exc}", 2)
    try:
        description = one_line(description)
    except ValueError as exc:
        fail(f"the description {exc}", 2)

    with_conn(
        lambda conn: skills.add_skill(conn, name, body, description=description, replace=replace)
    )
    click.echo(f"skill {name} saved")


@skill.command("list", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def skill_list(as_json: bool) -> None:
    """List skills."""
    from agentos.kernel import skills

    rows = with_conn(lambda conn: skills.list_skills(conn))
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no skills")
    for sk in rows:
        name = sk["name"] if isinstance(sk, dict) else sk.name
        desc = sk["description"] if isinstance(sk, dict) else sk.description
        click.echo(f"{name:<24} {safe(desc)}")


@skill.command("show", context_settings=CONTEXT)
@click.argument("name")
@handle_errors
def skill_show(name: str) -> None:
    """Print a skill."""
    from agentos.kernel import skills

    sk = with_conn(lambda conn: skills.get_skill(conn, name))
    click.echo(safe(sk["body"] if isinstance(sk, dict) else sk.body, keep_newlines=True))


# -------------------------------------------------------------------- schedule --


@cli.group(context_settings=CONTEXT)
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


# ------------------------------------------------------------------------- tui --


@cli.command(
    "tui", context_settings={**CONTEXT, "ignore_unknown_options": True}, add_help_option=False
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def tui(args: tuple[str, ...]) -> None:
    """Mission control: the team live in your terminal (`agentos tui --help`)."""
    # Imported here so that `agentos --help` never loads textual.
    from agentos.cli.common import announce_embedded_start
    from agentos.tui.command import tui_command

    # tui may not import cli: the one announcement (decision 040) is handed down
    tui_command.main(
        args=list(args),
        prog_name="agentos tui",
        standalone_mode=True,
        obj={"announce_embedded_start": announce_embedded_start},
    )


# ----------------------------------------------------------------------- bench --


@cli.group(context_settings=CONTEXT)
def bench() -> None:
    """Benchmarks against a scratch database, with a baseline measured in the same run."""


@bench.command("dispatch", context_settings=CONTEXT)
@click.option("--tasks", "n", type=click.IntRange(100, 1_000_000), default=2000, show_default=True)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Agent slots per process.",
)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def bench_dispatch(n: int, concurrency: int, as_json: bool) -> None:
    """No-op tasks through the kernel path (1 and 2 processes) beside raw pgqueuer."""
    from agentos.kernel import bench as b

    result = run(
        b.dispatch(settings(), n=n, concurrency=concurrency, echo=None if as_json else click.echo)
    )
    if as_json:
        echo_json(result)


@bench.command("wake", context_settings=CONTEXT)
@click.option("--tasks", "n", type=click.IntRange(10, 1_000_000), default=1000, show_default=True)
@click.option(
    "--killed-samples",
    type=click.IntRange(0, 1000),
    default=20,
    show_default=True,
    help="Samples with the listener's connection killed (poll fallback).",
)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def bench_wake(n: int, killed_samples: int, as_json: bool) -> None:
    """Task commit to claim latency beside bare NOTIFY round-trip."""
    from agentos.kernel import bench as b

    result = run(
        b.wake(settings(), n=n, killed_samples=killed_samples, echo=None if as_json else click.echo)
    )
    if as_json:
        echo_json(result)


from agentos.cli.footprint import bench_footprint  # noqa: E402
from agentos.cli.tools_cmd import doctor, tool  # noqa: E402

bench.add_command(bench_footprint)

cli.add_command(tool)
cli.add_command(doctor)

from agentos.cli.executors import executor  # noqa: E402

cli.add_command(executor)
from agentos.cli.secret import secret  # noqa: E402

cli.add_command(secret)


def main() -> None:
    """Console-script entry point: usage errors are one `error: ...` line too (exit 2)."""
    try:
        rv = cli.main(prog_name="agentos", standalone_mode=False)
    except _NO_ARGS_IS_HELP as exc:
        exc.show()  # `agentos task` alone prints the group's help, as click does
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        fail(_one_line(exc.format_message()) + hint, 2)
    except click.FileError as exc:
        fail(_one_line(exc.format_message()), 2)
    except click.ClickException as exc:
        fail(_one_line(exc.format_message()), exc.exit_code)
    except click.Abort:
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _one_line(message: str) -> str:
    return "; ".join(ln.strip() for ln in message.splitlines() if ln.strip()) or "bad usage"


if __name__ == "__main__":
    main()
