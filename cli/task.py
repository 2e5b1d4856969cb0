"""`agentos task`: create, list, show, cancel, retry, approve and reject tasks."""

from __future__ import annotations

import json
from typing import Any

import click
from agentos.cli.common import (
    CONTEXT,
    ID,
    budget_usd,
    check_role_known,
    echo_json,
    fail,
    handle_errors,
    open_kernel,
    person,
    read_text,
    run,
    safe,
    with_conn,
)

STATUSES = [
    "inbox",
    "assigned",
    "in_progress",
    "review",
    "approval",
    "done",
    "blocked",
    "failed",
    "cancelled",
]


@click.group(context_settings=CONTEXT)
def task() -> None:
    """Create, list, show, cancel, retry, approve and reject tasks."""


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
    if t.approval:
        click.echo(f"  approval: {t.approval}")
    _print_wait(t)


def _print_wait(t: Any) -> None:
    """What a task waiting for a person waits for, and the commands that answer it."""
    from agentos.agents.gate import describe_diffstat
    from agentos.kernel.approvals import waits_on_budget

    if t.status == "approval":
        held = t.metadata.get("approval") or {}
        click.echo(f"  waits for a person: {safe(held.get('reason') or 'approval of its merge')}")
        if held.get("reviewer"):
            click.echo(
                f"  approved by {safe(held['reviewer'])}: "
                f"{safe(held.get('comment') or '', keep_newlines=True)}"
            )
        if "files" in held:
            click.echo(f"  changes: {describe_diffstat(held)}")
            for c in held.get("changes") or []:
                lines = f"+{c['added']} -{c['deleted']}" if c.get("added") is not None else "binary"
                click.echo(f"    {lines:<14} {safe(str(c.get('path')))}")
        click.echo(
            f"  merge it: agentos task approve {t.id}; send it back: "
            f'agentos task reject {t.id} --feedback "..."'
        )
    elif waits_on_budget(t):
        click.echo(
            f"  waits for a person: its budget ran out; agentos task approve {t.id} "
            "--budget USD resumes it"
        )


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
@click.option(
    "--approval",
    type=click.Choice(["human", "auto"]),
    default=None,
    help="human: its approved merge (and its subtasks') waits for `agentos task approve`; "
    "auto: merges once reviewed. Default: the review role's `merge` setting.",
)
@click.option(
    "--skill",
    "skill_names",
    multiple=True,
    metavar="NAME",
    help="A skill (`agentos skill add`) put into the agent's prompt for this task (repeatable).",
)
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
    approval: str | None,
    skill_names: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create a task; ready tasks wake an agent of the role at once."""
    from agentos.kernel import skills, tasks
    from agentos.kernel.errors import BadInput, NotFound

    if description == "-" and acceptance == "-":
        fail("only one of --description and --acceptance can be read from stdin", 2)
    description = read_text(description, "--description")
    acceptance = read_text(acceptance, "--acceptance")

    async def _go(conn: Any) -> Any:
        if assignee is None:
            # An assigned task goes to its agent whatever the role; otherwise a role
            # nobody runs would leave the task waiting forever.
            await check_role_known(conn, role)
        for name in skill_names:  # a typo is an error now, not a prompt without the skill
            try:
                await skills.get_skill(conn, name)
            except NotFound:
                raise BadInput(f"no skill {name!r} (see `agentos skill list`)") from None
        return await tasks.create_task(
            conn,
            created_by=person(),
            title=title,
            description=description,
            acceptance=acceptance,
            role=role,
            assignee=assignee,
            priority=priority,
            parent_id=parent,
            depends_on=list(depends_on),
            max_attempts=max_attempts,
            approval=approval,
            metadata={"skills": list(dict.fromkeys(skill_names))} if skill_names else {},
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
    from agentos.kernel import approvals, tasks

    async def _go(conn: Any) -> Any:
        rows = await tasks.list_tasks(conn, status=status, role=role, limit=limit)
        return rows, await approvals.awaiting(conn, limit=100)

    rows, waiting = with_conn(_go)
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
    if waiting:
        # waiting is a visible state, never a silent stop: say what a person can do
        click.echo(f"{len(waiting)} waiting for you:")
        for w in waiting:
            if w["waits_for"] == "merge":
                what = f"merge ({safe(w['reason'] or '')})"
                how = f"agentos task approve {w['id']} | task reject {w['id']} --feedback ..."
            else:
                what = "budget"
                how = f"agentos task approve {w['id']} --budget USD"
            click.echo(f"  #{w['id']:<5} {what}: {how}")


def _one_task(action: str, task_id: int, as_json: bool, budget: float | None = None) -> None:
    from agentos.kernel import tasks

    actor = person()

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


@task.command("approve", context_settings=CONTEXT)
@click.argument("task_id", type=ID)
@click.option(
    "--budget",
    callback=budget_usd,
    metavar="USD",
    default=None,
    help="For a task blocked on its budget: resume it with this budget (in USD).",
)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def task_approve(task_id: int, budget: float | None, as_json: bool) -> None:
    """Approve a task waiting for a person: merge its branch and finish it (the parent
    goal is woken as by any merge); with --budget, resume a task whose budget ran out."""
    from agentos.agents import gate
    from agentos.agents.config import AgentSettings
    from agentos.agents.workspace import Workspace

    async def _go() -> Any:
        s = AgentSettings()
        kernel = await open_kernel(pool_max=3)
        try:
            workspace = Workspace(
                s.workspace_path,
                s.worktrees_path,
                s.workspace_remote,
                kernel=kernel,
                base_branch=s.base_branch,
            )
            if budget is None:
                await workspace.ensure()
            return await gate.approve(
                kernel, workspace, task_id, actor=person(), budget_usd=budget
            )
        finally:
            await kernel.close()

    t = run(_go())
    if as_json:
        echo_json(t)
    elif t.status == "done":
        merged = t.metadata.get("merged") or ""
        click.echo(
            f"task #{t.id} is now done: merged into {t.metadata.get('base_branch')} ({merged[:12]})"
        )
    else:
        click.echo(f"task #{t.id} is now {t.status} with a budget of ${t.budget_usd:g}")


@task.command("reject", context_settings=CONTEXT)
@click.argument("task_id", type=ID)
@click.option(
    "--feedback",
    "-f",
    required=True,
    help="What the worker must change (- reads it from stdin); it is in its next prompt.",
)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def task_reject(task_id: int, feedback: str, as_json: bool) -> None:
    """Send a task waiting for approval back to its worker with feedback."""
    from agentos.kernel import approvals

    text = read_text(feedback, "--feedback")
    if not text.strip():
        fail("--feedback needs the text the worker will read", 2)
    t = with_conn(lambda conn: approvals.reject(conn, task_id, actor=person(), feedback=text))
    if as_json:
        echo_json(t)
    else:
        who = f" ({t.assignee})" if t.assignee else ""
        click.echo(f"task #{t.id} is now {t.status}{who}: sent back with your feedback")
