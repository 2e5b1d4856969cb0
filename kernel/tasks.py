"""The task state machine, seen from Python.

Every status change goes through `transition()`, which calls the SQL function
agentos.transition_task: the database checks the move against agentos.task_transitions,
records the activity and enqueues any work the new state causes, all in the caller's
transaction. The same trigger guards psql writes, so no path can skip the rules.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from agentos.kernel import activities, errors, messages, redact
from agentos.kernel.db import Conn, translated
from agentos.kernel.models import (
    BIGINT_MAX,
    RETRYABLE,
    NewTask,
    Task,
    TaskStatus,
    first_error,
)
from agentos.sql import query
from psycopg.types.json import Jsonb
from pydantic import ValidationError


def validate_new_task(**fields: Any) -> NewTask:
    """The fields of a new task, checked; BadInput names the first problem."""
    for key, value in fields.items():
        # pydantic's own message for these ("unable to parse raw data") names no cause
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise errors.BadInput(
                    f"{key}: is not valid UTF-8 (at character {exc.start + 1})"
                ) from None
    try:
        return NewTask(**redact.redact(fields))
    except ValidationError as exc:
        raise errors.BadInput(first_error(exc)) from exc


@translated
async def create_task(conn: Conn, *, created_by: str = "cli", **fields: Any) -> Task:
    """Create a task (and its dependencies) in one transaction; one round trip when simple."""
    new = validate_new_task(**fields)
    # Unknown dependencies, parent or assignee fail on their foreign keys, translated into
    # one-line errors (kernel.db), with nothing written.
    async with conn.transaction():
        params = new.model_dump(exclude={"depends_on"})
        params["metadata"] = Jsonb(new.metadata)
        params["created_by"] = created_by
        cur = await conn.execute(query("insert_task"), params)
        row = await cur.fetchone()
        assert row is not None
        for dep in new.depends_on:
            await conn.execute(
                query("insert_dependency"), {"task_id": row["id"], "depends_on_id": dep}
            )
    return Task.model_validate({**row, "depends_on": new.depends_on})


@translated
async def get_task(conn: Conn, task_id: int) -> Task:
    """One task; NotFound when it does not exist."""
    if not 1 <= task_id <= BIGINT_MAX:
        raise errors.NotFound(f"no task {task_id}")
    row = await (await conn.execute(query("get_task"), {"id": task_id})).fetchone()
    if row is None:
        raise errors.NotFound(f"no task {task_id}")
    return Task.model_validate(row)


@translated
async def list_tasks(
    conn: Conn,
    *,
    status: TaskStatus | str | None = None,
    role: str | None = None,
    parent_id: int | None = None,
    limit: int = 1000,
) -> list[Task]:
    """Tasks in board order, optionally filtered."""
    if status is not None and status not in TaskStatus.__members__:
        raise errors.BadInput(f"unknown status {status!r} (one of {', '.join(TaskStatus)})")
    rows = await (
        await conn.execute(
            query("list_tasks"),
            {"status": status, "role": role, "parent_id": parent_id, "limit": limit},
        )
    ).fetchall()
    return [Task.model_validate(r) for r in rows]


@translated
async def transition(
    conn: Conn,
    task_id: int,
    to: TaskStatus | str,
    *,
    actor: str,
    reason: str | None = None,
    token: uuid.UUID | None = None,
    result: str | None = None,
    error: str | None = None,
    assignee: str | None = None,
) -> Task:
    """Move a task to a new status: the only way a status changes.

    With `token`, the caller must hold the current lease: a stale holder's late write
    raises StaleLease and changes nothing.
    """
    if to not in TaskStatus.__members__:
        raise errors.BadInput(f"unknown status {to!r}")
    async with conn.transaction():
        row = await (
            await conn.execute(
                query("transition_task"),
                {
                    "id": task_id,
                    "to": str(to),
                    "actor": actor,
                    "reason": redact.redact(reason),
                    "token": token,
                    "result": redact.redact(result),
                    "error": redact.redact(error),
                    "assignee": assignee,
                },
            )
        ).fetchone()
    assert row is not None
    return Task.model_validate(row)


@translated
async def cancel(conn: Conn, task_id: int, *, actor: str, reason: str | None = None) -> Task:
    """Cancel a task (its holder learns through NOTIFY and stops between steps)."""
    task = await get_task(conn, task_id)
    if task.status == TaskStatus.cancelled:
        raise errors.InvalidTransition(f"task {task_id} is already cancelled")
    if task.status == TaskStatus.done:
        raise errors.InvalidTransition(f"task {task_id} is done; it cannot be cancelled")
    return await transition(
        conn, task_id, TaskStatus.cancelled, actor=actor, reason=reason or f"cancelled by {actor}"
    )


MAX_BUDGET_USD = 99_999_999.0  # numeric(14, 6)


def check_budget(budget_usd: float) -> float:
    """A task budget in USD: finite and positive (NaN compares true in SQL), else BadInput."""
    if not isinstance(budget_usd, int | float) or isinstance(budget_usd, bool):
        raise errors.BadInput(f"the budget must be a number of USD, not {budget_usd!r}")
    if not math.isfinite(budget_usd) or not 0 < budget_usd <= MAX_BUDGET_USD:
        raise errors.BadInput(
            f"the budget must be a finite amount above 0 and at most {MAX_BUDGET_USD:.0f} USD, "
            f"not {budget_usd}"
        )
    return float(budget_usd)


@translated
async def retry(
    conn: Conn,
    task_id: int,
    *,
    actor: str,
    reason: str | None = None,
    budget_usd: float | None = None,
) -> Task:
    """Put a failed, blocked or cancelled task back in the queue, optionally with a new budget.

    One transaction with the task row locked: a refused retry changes nothing, the
    budget included.
    """
    if budget_usd is not None:
        budget_usd = check_budget(budget_usd)
    if not 1 <= task_id <= BIGINT_MAX:
        raise errors.NotFound(f"no task {task_id}")
    async with conn.transaction():
        row = await (await conn.execute(query("lock_task_for_retry"), {"id": task_id})).fetchone()
        if row is None:
            raise errors.NotFound(f"no task {task_id}")
        if row["status"] not in RETRYABLE:
            raise errors.InvalidTransition(
                f"task {task_id} is {row['status']}; only failed, blocked or cancelled tasks "
                "can be retried (nothing changed)"
            )
        if budget_usd is not None:
            from agentos.kernel.usage import raise_task_budget

            await raise_task_budget(conn, task_id, budget_usd, actor=actor)
        to = TaskStatus.assigned if row["assignee"] else TaskStatus.inbox
        if (row["metadata"] or {}).get("retry_to") == "review" and row["branch"]:
            # reviewed work that waited on something outside it (a dirty checkout of the
            # base branch, a check that could not run): review it again, do not redo it
            to = TaskStatus.review
            await conn.execute(
                query("merge_task_metadata"), {"id": task_id, "metadata": Jsonb({"retry_to": None})}
            )
        return await transition(
            conn, task_id, to, actor=actor, reason=reason or f"retried by {actor}"
        )


@translated
async def complete(
    conn: Conn,
    task: Task,
    *,
    actor: str,
    to: TaskStatus = TaskStatus.done,
    result: str | None = None,
) -> Task:
    """The lease holder finishes its stage (to review, or done)."""
    if task.lease_token is None:
        raise errors.StaleLease(f"task {task.id}: no lease held")
    return await transition(
        conn,
        task.id,
        to,
        actor=actor,
        token=task.lease_token,
        result=result,
        reason=f"{task.status} -> {to} by {actor}",
    )


@translated
async def release(conn: Conn, task: Task, *, reason: str) -> Task:
    """Give back a lease without finishing (shutdown); the task is ready again at once."""
    if task.lease_token is None:
        raise errors.StaleLease(f"task {task.id}: no lease held")
    async with conn.transaction():
        await conn.execute(
            query("release_task"),
            {"id": task.id, "token": task.lease_token, "reason": redact.redact_text(reason)},
        )
    return await get_task(conn, task.id)


# ------------------------------------------------------------ stage endings ----
# How a worker's, reviewer's or planner's stage ends: each is one transaction that
# checks the holder's lease, records what the stage produced and moves the task.


@translated
async def submit_for_review(
    conn: Conn, task: Task, *, actor: str, branch: str, summary: str
) -> Task:
    """The holder hands its branch to review (lease-checked)."""
    async with conn.transaction():
        row = await (
            await conn.execute(
                query("set_task_branch"),
                {
                    "id": task.id,
                    "token": task.lease_token,
                    "branch": branch,
                    "metadata": Jsonb({"worker": actor}),
                },
            )
        ).fetchone()
        if row is None:
            raise errors.StaleLease(f"task {task.id}: lease lost")
        return await transition(
            conn,
            task.id,
            TaskStatus.review,
            actor=actor,
            token=task.lease_token,
            result=summary,
            reason=f"submitted for review by {actor}",
        )


@translated
async def record_merge(
    conn: Conn,
    task: Task,
    *,
    actor: str,
    commit: str,
    branch: str,
    base: str,
    comment: str,
) -> Task:
    """The reviewer merged the branch: record the commit and finish the task."""
    async with conn.transaction():
        await conn.execute(
            query("merge_task_metadata"),
            {
                "id": task.id,
                "metadata": Jsonb({"merged": commit, "base_branch": base, "reviewer": actor}),
            },
        )
        await activities.record(
            conn,
            "task.merged",
            task_id=task.id,
            message=f"{branch} merged into {base} ({commit[:12]})",
            data={"commit": commit, "branch": branch, "base": base},
            actor=actor,
        )
        return await transition(
            conn,
            task.id,
            TaskStatus.done,
            actor=actor,
            token=task.lease_token,
            reason=f"approved by {actor}: {comment}",
        )


@translated
async def reject(
    conn: Conn,
    task: Task,
    *,
    actor: str,
    feedback: str,
    max_rejections: int,
    worker: str | None,
) -> Task:
    """Send the work back with feedback (a review message to the worker): to the worker
    while it is alive, else to any agent of the role; blocked for a human after
    `max_rejections`."""
    async with conn.transaction():
        row = await (
            await conn.execute(query("count_rejection"), {"id": task.id, "token": task.lease_token})
        ).fetchone()
        if row is None:
            raise errors.StaleLease(f"task {task.id}: lease lost")
        # the worker learns of it from the task coming back, not from a wake-up
        await messages.send_message(
            conn, body=feedback, to_agent=worker, task_id=task.id, from_agent=actor,
            kind="review", wake=False,
        )  # fmt: skip
        n = int(row["rejections"])
        to, extra = TaskStatus.inbox, {"reason": f"rejected by {actor}: {feedback}"}
        if n >= max_rejections:
            to, extra = (
                TaskStatus.blocked,
                {"error": f"rejected {n} times; needs a human: {feedback}"},
            )
        elif worker and await agent_alive(conn, worker):
            to, extra["assignee"] = TaskStatus.assigned, worker
        return await transition(conn, task.id, to, actor=actor, token=task.lease_token, **extra)


@translated
async def block_in_review(conn: Conn, task: Task, *, actor: str, reason: str) -> Task:
    """Block a task under review for something its work cannot fix (the base branch
    checked out dirty, a check that cannot run); `retry` brings it back to review."""
    async with conn.transaction():
        await conn.execute(
            query("merge_task_metadata"), {"id": task.id, "metadata": Jsonb({"retry_to": "review"})}
        )
        return await transition(
            conn,
            task.id,
            TaskStatus.blocked,
            actor=actor,
            token=task.lease_token,
            error=reason[:2000],
            reason=f"blocked by {actor}: {reason}"[:2000],
        )


@translated
async def wait_for_subtasks(
    conn: Conn, task: Task, *, actor: str, subtask_ids: list[int], summary: str
) -> Task:
    """A planned goal waits for its subtasks (dependencies) and goes back to the queue."""
    async with conn.transaction():
        for sub in subtask_ids:
            await conn.execute(
                query("add_dependency_if_missing"), {"task_id": task.id, "depends_on_id": sub}
            )
        to = TaskStatus.assigned if task.assignee else TaskStatus.inbox
        return await transition(
            conn, task.id, to, actor=actor, token=task.lease_token, reason=f"planned: {summary}"
        )


@translated
async def unblock_stuck_goals(conn: Conn, *, role: str) -> None:
    """Goals of the planning `role` waiting on a failed, blocked or cancelled subtask come
    back for re-planning."""
    async with conn.transaction():
        await conn.execute(query("unblock_goals_of_stuck_subtasks"), {"role": role})
        await conn.execute(query("requeue_orphans_now"))


@translated
async def agent_alive(conn: Conn, name: str) -> bool:
    """Whether the agent has a live session."""
    row = await (await conn.execute(query("agent_is_alive"), {"name": name})).fetchone()
    return bool(row and row["alive"])


@translated
async def role_load(conn: Conn, role: str) -> tuple[int, int]:
    """(ready work, leased tasks) of a role."""
    row = await (await conn.execute(query("role_load"), {"role": role})).fetchone()
    assert row is not None
    return int(row["ready"]), int(row["busy"])


@translated
async def count_subtasks(conn: Conn, task_id: int) -> int:
    """How many subtasks the task has."""
    row = await (await conn.execute(query("count_subtasks"), {"id": task_id})).fetchone()
    return int(row["n"]) if row else 0


@translated
async def find_by_title(conn: Conn, title: str) -> int | None:
    """The id of the newest task with this title that was not cancelled, if any."""
    row = await (await conn.execute(query("find_task_by_title"), {"title": title})).fetchone()
    return int(row["id"]) if row else None
