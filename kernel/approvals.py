"""Waiting for a person: merges the gate holds, and tasks blocked on their budget.

A reviewer that approves work its merge gate holds (agents/gate.py decides) moves the
task `review -> approval` (`hold`), with the review's comment, the reason it waits and
the branch's diffstat in `metadata.approval`. Nothing is queued for a task in approval;
only a person moves it on:

* `agentos task approve N`: the agent layer merges the branch (the same plumbing merge
  the reviewer uses) while this module holds the task's row lock (`lock_for_decision`),
  then `record_approved_merge` records the merge and finishes the task in the same
  transaction, so a merge is never recorded twice and a concurrent cancel waits;
* `agentos task reject N --feedback ...` (`reject`): a review message to the worker
  (it is in the worker's next prompt), one more rejection (a new round of its work
  stage) and back to the worker while it is alive, else to its role.

A task blocked because its budget ran out (`budget exhausted: task:N`) is the same kind
of wait: `agentos task approve N --budget USD` is a retry with that budget.
"""

from __future__ import annotations

from typing import Any

from agentos.kernel import errors, messages, tasks
from agentos.kernel.db import Conn, translated
from agentos.kernel.models import BIGINT_MAX, Task, TaskStatus
from agentos.sql import query
from psycopg.types.json import Jsonb

BUDGET_BREACH = "budget exhausted: task:"


def waits_on_budget(task: Task) -> bool:
    """Whether the task is blocked because its own budget ran out."""
    return task.status == TaskStatus.blocked and (task.error or "").startswith(BUDGET_BREACH)


@translated
async def hold(
    conn: Conn,
    task: Task,
    *,
    actor: str,
    comment: str,
    reason: str,
    diffstat: dict[str, Any],
) -> Task:
    """The review's holder approved, and the merge waits for a person (lease-checked)."""
    approval = {
        "reviewer": actor,
        "comment": comment[:4000],
        "reason": reason[:2000],
        **diffstat,
    }
    async with conn.transaction():
        row = await (
            await conn.execute(
                query("record_approval_wait"),
                {"id": task.id, "token": task.lease_token, "approval": Jsonb(approval)},
            )
        ).fetchone()
        if row is None:
            raise errors.StaleLease(f"task {task.id}: lease lost")
        return await tasks.transition(
            conn,
            task.id,
            TaskStatus.approval,
            actor=actor,
            token=task.lease_token,
            reason=f"approved by {actor}; the merge waits for a person: {reason}"[:2000],
        )


@translated
async def lock_for_decision(conn: Conn, task_id: int) -> Task:
    """The task, row-locked until the caller's transaction ends; NotFound if none."""
    if not 1 <= task_id <= BIGINT_MAX:
        raise errors.NotFound(f"no task {task_id}")
    row = await (
        await conn.execute(query("lock_task_for_decision"), {"id": task_id})
    ).fetchone()
    if row is None:
        raise errors.NotFound(f"no task {task_id}")
    return Task.model_validate(row)


def refuse_unless_waiting(task: Task, what: str) -> None:
    """InvalidTransition unless the task waits for a person's approval of its merge."""
    if task.status == TaskStatus.approval:
        return
    if what == "approve" and waits_on_budget(task):
        raise errors.InvalidTransition(
            f"task {task.id} is blocked on its budget ({task.error}); approve it with "
            "--budget USD (nothing changed)"
        )
    raise errors.InvalidTransition(
        f"task {task.id} is {task.status}, not waiting for approval; only a task in "
        f"approval can be {'approved' if what == 'approve' else 'rejected'} (nothing changed)"
    )


@translated
async def record_approved_merge(
    conn: Conn, task: Task, *, actor: str, commit: str, branch: str, base: str
) -> Task:
    """A person approved the held merge and it is done: record it, finish the task.

    Call it in the transaction that holds `lock_for_decision`'s lock."""
    refuse_unless_waiting(task, "approve")
    await _decision(conn, task.id, {"by": actor, "decision": "approved", "commit": commit})
    reviewer = (task.metadata.get("approval") or {}).get("reviewer") or "the reviewer"
    return await tasks.record_merge(
        conn,
        task,
        actor=actor,
        commit=commit,
        branch=branch,
        base=base,
        comment=f"merge held after {reviewer}'s review, approved by {actor}",
    )


@translated
async def reject(conn: Conn, task_id: int, *, actor: str, feedback: str) -> Task:
    """A person sends held work back to its worker with feedback (one transaction)."""
    async with conn.transaction():
        task = await lock_for_decision(conn, task_id)
        refuse_unless_waiting(task, "reject")
        worker = task.metadata.get("worker")
        if (
            worker
            and not await (
                await conn.execute(query("get_agent"), {"name": worker})
            ).fetchone()
        ):
            worker = None  # removed since: the feedback stays on the task's thread
        # the feedback is a review message: the worker's next prompt lists it
        await messages.send_message(
            conn, body=feedback, to_agent=worker, task_id=task.id, from_agent=actor,
            kind="review", wake=False,
        )  # fmt: skip
        await conn.execute(query("count_person_rejection"), {"id": task.id})
        await _decision(conn, task.id, {"by": actor, "decision": "rejected"})
        extra: dict[str, Any] = {"reason": f"rejected by {actor}: {feedback}"[:2000]}
        to = TaskStatus.inbox
        if worker and await tasks.agent_alive(conn, worker):
            to, extra["assignee"] = TaskStatus.assigned, worker
        return await tasks.transition(conn, task.id, to, actor=actor, **extra)


async def _decision(conn: Conn, task_id: int, decision: dict[str, Any]) -> None:
    await conn.execute(
        query("record_approval_decision"), {"id": task_id, "decision": Jsonb(decision)}
    )


@translated
async def awaiting(conn: Conn, *, limit: int = 1000) -> list[dict[str, Any]]:
    """What waits for a person (the awaiting_people view), oldest first."""
    rows = await (await conn.execute(query("awaiting_people"), {"limit": limit})).fetchall()
    return [dict(r) for r in rows]
