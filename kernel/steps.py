"""Durable steps: every step of an agent's loop is a row, written before the next starts.

A task's steps form one conversation per stage (work, review, plan). An agent that
takes a task over reads them and resumes after the last one: completed tool calls
(those with a tool_result row) are never run again and completed LLM turns are never
paid for again. The unique key (task, stage, seq) makes a stale holder's late append
fail instead of interleaving with the new holder's steps.
"""

from __future__ import annotations

import datetime as dt
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

    The content is redacted (kernel/redact.py) before it is written, and the row
    returned is the row written: what a model later reads back is the redacted text."""
    content = redact.redact(content)
    async with conn.transaction():
        if lease_token is not None:
            held = await (
                await conn.execute(
                    "SELECT 1 FROM agentos.tasks WHERE id = %s AND lease_token = %s FOR SHARE",
                    (task_id, lease_token),
                )
            ).fetchone()
            if held is None:
                raise errors.StaleLease(f"task {task_id}: lease lost; step not recorded")
        row = await (
            await conn.execute(
                "INSERT INTO agentos.steps (task_id, stage, seq, agent, attempt, kind, tool_name, "
                "tool_call_id, content) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
                (task_id, stage, seq, agent, attempt, kind, tool_name, tool_call_id,
                 Jsonb(content)),
            )
        ).fetchone()
    return Step.model_validate(row)
