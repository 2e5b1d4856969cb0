"""What a person does from mission control, as kernel calls (no SQL here).

Each function takes a connection and goes through the kernel's own function for the
action (agentos.kernel.tasks, .messages, .usage), so a person at the TUI is held to the
same checks, audit and wake-ups as `agentos task ...` or an agent's tool.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from agentos.kernel import errors, views
from agentos.kernel import messages as kmessages
from agentos.kernel import tasks as ktasks
from agentos.kernel.db import Conn
from agentos.kernel.models import Task, TaskStatus
from agentos.kernel.usage import raise_task_budget
from agentos.tui.fmt import shown

# A raise on these is a retry with the new budget (as `agentos task retry N --budget`):
# they stopped for want of money or attempts and the person gives them more.
STUCK = frozenset({TaskStatus.blocked, TaskStatus.failed})
# A raise on these changes nothing: there is no work left to pay for (done), or a
# person stopped it (cancelled: `r` brings it back first).
FINISHED = frozenset({TaskStatus.done, TaskStatus.cancelled})


async def raise_budget(conn: Conn, task_id: int, budget_usd: Decimal, *, actor: str) -> Task:
    """Give a task a new budget: a stuck task is retried with it in one transaction.

    Blocked or failed: kernel.tasks.retry(budget_usd=...), which locks the row and
    changes the budget only if the retry happens (a task retried or finished meanwhile
    is refused, its budget untouched). A live task (inbox to review) keeps running with
    the new budget (kernel.usage.raise_task_budget, audited). Done or cancelled:
    refused, nothing changed.
    """
    amount = ktasks.check_budget(float(budget_usd))
    task = await ktasks.get_task(conn, task_id)
    if task.status in STUCK:
        return await ktasks.retry(
            conn, task_id, actor=actor, reason=f"budget raised by {actor}", budget_usd=amount
        )
    if task.status in FINISHED:
        raise errors.InvalidTransition(
            f"task {task_id} is {task.status}; retry it before raising its budget (nothing changed)"
        )
    async with conn.transaction():
        await raise_task_budget(conn, task_id, amount, actor=actor)
    return await ktasks.get_task(conn, task_id)


async def send_message(
    conn: Conn,
    *,
    body: str,
    to_agent: str | None = None,
    task_id: int | None = None,
    channel: str | None = None,
    from_agent: str,
    kind: str = "comment",
) -> int:
    """A person's message to an agent, about a task (or both), or in a channel
    (kernel.messages.send_message; the person is registered the first time).

    The kernel would make a message with none of these a broadcast; the form never means one.
    """
    if to_agent is None and task_id is None and channel is None:
        raise errors.BadInput("a message goes to an agent, a task, or a channel")
    msg = await kmessages.send_message(
        conn,
        body=body,
        to_agent=to_agent,
        task_id=task_id,
        channel=channel,
        from_agent=from_agent,
        kind=kind,
        as_person=True,
    )
    return msg.id


async def mark_read(conn: Conn, ids: list[int], *, reader: str) -> int:
    """The person read these messages (kernel.messages.mark_read: one receipt each)."""
    return await kmessages.mark_read(conn, ids, reader=reader)


async def task_budget(conn: Conn, task_id: int) -> dict[str, Any]:
    """A task's title, status, budget and spend (what the budget form shows)."""
    row = await views.read_one(conn, "task_budget", {"id": task_id})
    if row is None:
        raise errors.NotFound(f"no task {task_id}")
    return {**row, "title": shown(row["title"])}
