"""The activity log: the audit trail of every change, one row per event.

`record()` is the one way code above the kernel appends to it; SQL triggers record
the state machine's own transitions. Each row sends a small NOTIFY on
`agentos_activity` (id, kind, task), so `agentos log --follow` and mission control see
it as it commits.
"""

from __future__ import annotations

from typing import Any

from agentos.kernel import redact
from agentos.kernel.db import Conn
from agentos.sql import query
from psycopg.types.json import Jsonb

# Progress notes: one per agent turn, so `agentos log --follow` shows the agents at
# work. The turn itself is recorded in the transcript (steps) and llm_calls; losing the
# note in a server crash loses nothing else, so its transaction does not wait for the
# WAL flush.
PROGRESS_KINDS = frozenset({"agent.step"})


async def record(
    conn: Conn,
    kind: str,
    *,
    task_id: int | None = None,
    message: str = "",
    data: dict[str, Any] | None = None,
    actor: str | None = None,
    wait_for_flush: bool = False,
) -> int:
    """Append one activity (message and data redacted); returns its id. A progress note
    (PROGRESS_KINDS) makes its transaction commit without waiting for the WAL flush,
    unless wait_for_flush (the transaction holds something durable besides)."""
    progress = kind in PROGRESS_KINDS and not wait_for_flush
    row = await (
        await conn.execute(
            query("record_progress" if progress else "record_activity"),
            {
                "kind": kind,
                "task": task_id,
                "message": redact.redact_text(message),
                "data": Jsonb(redact.redact(data or {})),
                "actor": actor,
            },
        )
    ).fetchone()
    assert row is not None
    return int(row["id"])


async def last_id(conn: Conn) -> int:
    """The newest activity's id (0 when the log is empty)."""
    row = await (await conn.execute(query("last_activity_id"))).fetchone()
    return int(row["id"]) if row else 0


async def recent(
    conn: Conn, *, actor: str | None = None, task_id: int | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The latest activities, newest first, optionally of one actor or task."""
    rows = await (
        await conn.execute(
            query("recent_activities"), {"actor": actor, "task": task_id, "limit": limit}
        )
    ).fetchall()
    return list(rows)


async def after(
    conn: Conn,
    after_id: int,
    *,
    actor: str | None = None,
    task_id: int | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Activities with an id above `after_id`, oldest first, optionally filtered."""
    rows = await (
        await conn.execute(
            query("list_activities"),
            {"after": after_id, "actor": actor, "task": task_id, "limit": limit},
        )
    ).fetchall()
    return list(rows)
