"""Durable steps: every step of an agent's loop is a row, written before the next starts.

A task's steps form one conversation per stage (work, review, plan). An agent that
takes a task over reads them and resumes after the last one: completed tool calls
(those with a tool_result row) are never run again and completed LLM turns are never
paid for again. The unique key (task, stage, seq) makes a stale holder's late append
fail instead of interleaving with the new holder's steps.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from agentos.kernel import errors, redact
from agentos.kernel.db import Conn, translated
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict


class Step(BaseModel):
    """One recorded step."""

    model_config = ConfigDict(extra="ignore")

    id: int
    task_id: int
    stage: str
    seq: int
    agent: str
    attempt: int
    kind: str
    tool_name: str | None
    tool_call_id: str | None
    content: dict[str, Any]
    created_at: dt.datetime


@translated
async def load(conn: Conn, task_id: int, stage: str) -> list[Step]:
    """Every step of a task's stage, in order."""
    rows = await (
        await conn.execute(
            "SELECT * FROM agentos.steps WHERE task_id = %s AND stage = %s ORDER BY seq",
            (task_id, stage),
        )
    ).fetchall()
    return [Step.model_validate(r) for r in rows]


# Steps whose loss (a server crash before their WAL reached the disk) only makes the
# next holder do again what has no side effect: the prompts, and the model's reply with
# its tool calls (asked again; the call itself is accounted durably in llm_calls). A
# tool result is waited for: losing it would run the tool again.
NO_FLUSH_WAIT = frozenset({"system", "user", "llm", "tool_call"})

APPEND_SQL = """
INSERT INTO agentos.steps (task_id, stage, seq, agent, attempt, kind, tool_name, tool_call_id,
                           content)
SELECT t.id, %s, %s, %s, %s, %s, %s, %s, %s
FROM agentos.tasks t,
     LATERAL (SELECT set_config('synchronous_commit',
                                coalesce(%s, current_setting('synchronous_commit')), true)) AS c
WHERE t.id = %s AND (%s::uuid IS NULL OR t.lease_token = %s::uuid)
FOR SHARE OF t
RETURNING *
"""


@dataclass(frozen=True)
class NewStep:
    """A step to append: its kind, content and (for tool steps) the tool and call id."""

    kind: str
    content: dict[str, Any]
    tool_name: str | None = None
    tool_call_id: str | None = None


@translated
async def append(
    conn: Conn,
    *,
    task_id: int,
    stage: str,
    seq: int,
    agent: str,
    attempt: int,
    kind: str,
    content: dict[str, Any],
    tool_name: str | None = None,
    tool_call_id: str | None = None,
    lease_token: Any = None,
) -> Step:
    """Append a step; with lease_token, only while that lease is current (else StaleLease).

    One statement: the lease is checked (the task row share-locked, so no takeover can
    slip in between) and the step written together. A step whose loss in a server crash
    repeats no side effect (see NO_FLUSH_WAIT) commits without waiting for its WAL
    flush: the tool result written after it waits for the flush, which makes every
    earlier step durable too (the WAL is written in order). The content is redacted
    (kernel/redact.py) before it is written, and the row returned is the row written:
    what a model later reads back is the redacted text."""
    (row,) = await append_many(
        conn,
        task_id=task_id,
        stage=stage,
        first_seq=seq,
        agent=agent,
        attempt=attempt,
        rows=[NewStep(kind, content, tool_name, tool_call_id)],
        lease_token=lease_token,
    )
    return row


@translated
async def append_many(
    conn: Conn,
    *,
    task_id: int,
    stage: str,
    first_seq: int,
    agent: str,
    attempt: int,
    rows: list[NewStep],
    lease_token: Any = None,
    wait_for_flush: bool = False,
) -> list[Step]:
    """Append several steps in order (seq first_seq, first_seq + 1, ...) in the caller's
    transaction, each checked against the lease as append() does: one commit for a
    turn's rows instead of one each. The transaction commits without waiting for its
    WAL flush only if every row may (NO_FLUSH_WAIT) and wait_for_flush is false (the
    caller's transaction holds something durable, e.g. an LLM call's usage)."""
    asynchronous = not wait_for_flush and all(r.kind in NO_FLUSH_WAIT for r in rows)
    out = []
    for i, r in enumerate(rows):
        row = await (
            await conn.execute(
                APPEND_SQL,
                (
                    stage,
                    first_seq + i,
                    agent,
                    attempt,
                    r.kind,
                    r.tool_name,
                    r.tool_call_id,
                    Jsonb(redact.redact(r.content)),
                    "off" if asynchronous else None,  # None: the server's setting
                    task_id,
                    lease_token,
                    lease_token,
                ),
            )
        ).fetchone()
        if row is None:
            if lease_token is not None:
                raise errors.StaleLease(f"task {task_id}: lease lost; step not recorded")
            raise errors.BadInput(f"no task {task_id}")
        out.append(Step.model_validate(row))
    return out
