"""Read-only views for screens: mission control's named reads (sql/tui.sql), run here.

Only the kernel runs SQL on agentos tables, so the TUI asks for its snapshots by name
(`read(conn, "board_cards", params)`) instead of carrying its own queries. Each read is
a SELECT with a LIMIT (a screen's worth of rows); the typed helpers below are the reads
that a caller wants as values rather than rows. Writes are never here: they are the
kernel's functions (tasks, messages, usage), with their checks and audit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from agentos.kernel.db import Conn, translated
from agentos.sql import query, tui_query


@translated
async def read(
    conn: Conn, name: str, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The rows of one named read of sql/tui.sql (KeyError names an unknown read)."""
    cur = await conn.execute(tui_query(name), dict(params or {}))
    return list(await cur.fetchall())


async def read_one(
    conn: Conn, name: str, params: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """The first row of a named read, or None."""
    rows = await read(conn, name, params)
    return rows[0] if rows else None


@translated
async def queue_depth(conn: Conn) -> list[dict[str, Any]]:
    """Ready, waiting and running work per role: the kernel's queue_depth view."""
    cur = await conn.execute(query("queue_depth"))
    return list(await cur.fetchall())


async def server_now(conn: Conn) -> dt.datetime:
    """The database server's clock."""
    row = await read_one(conn, "server_now")
    assert row is not None
    now: dt.datetime = row["now"]
    return now


async def agent_names(conn: Conn, *, limit: int = 500) -> list[str]:
    """Registered agents' names, sorted."""
    return [r["name"] for r in await read(conn, "agent_names", {"limit": limit})]


async def role_names(conn: Conn, *, limit: int = 100) -> list[str]:
    """Roles that agents run, plus the three built-in ones, sorted."""
    return [r["role"] for r in await read(conn, "role_names", {"limit": limit})]


async def running_sessions(conn: Conn) -> list[dict[str, Any]]:
    """Live agent sessions, oldest first."""
    return list(await (await conn.execute(query("running_sessions"))).fetchall())


async def board_summary(conn: Conn) -> dict[str, int]:
    """Task count per status."""
    rows = await (await conn.execute(query("board_summary"))).fetchall()
    return {r["status"]: int(r["tasks"]) for r in rows}


async def task_cost(conn: Conn, task_id: int) -> dict[str, Any]:
    """LLM calls, dollars and tokens spent on a task."""
    row = await (await conn.execute(query("task_cost"), {"id": task_id})).fetchone()
    assert row is not None
    return dict(row)


async def transcript(conn: Conn, task_id: int) -> list[dict[str, Any]]:
    """Every step of a task, stage by stage, in order."""
    return list(await (await conn.execute(query("task_transcript"), {"id": task_id})).fetchall())


async def agents_and_sessions(conn: Conn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Registered agents and live sessions (`agentos agent list`)."""
    agents = await (await conn.execute(query("list_agents"))).fetchall()
    sessions = await (await conn.execute(query("list_sessions"))).fetchall()
    return list(agents), list(sessions)


async def role_has_agents(conn: Conn, role: str) -> bool:
    """Whether a registered agent has this role."""
    return await (await conn.execute(query("known_role"), {"role": role})).fetchone() is not None
