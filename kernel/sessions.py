"""Agent and session registration: who runs where, and whether it is alive.

A session is one process (host, pid) hosting one or more agents of a role. It
heartbeats every few seconds; the leader marks sessions whose heartbeat is older than
three lease periods dead and their agents offline (their leases expire on their own
and are rescued by the sweeper). A dead session stays dead: it can neither claim nor
renew (sql/003), its heartbeat answers False, and a process that comes back (SIGCONT)
registers a new session (see runtime.py).

The heartbeat writes the session row only, never the agent rows: claims lock agent
rows, and a heartbeat that wrote them all deadlocked with claims. An agent's liveness
is its session's (the agent_status view shows greatest(agent, session) heartbeat).
"""

from __future__ import annotations

import os
import socket
import uuid

from agentos.kernel import errors
from agentos.kernel.db import Conn, translated
from agentos.kernel.models import NAME_RE, ROLE_RE
from agentos.sql import query
from psycopg.types.json import Jsonb


@translated
async def register_session(
    conn: Conn,
    *,
    role: str,
    agents: list[str],
    model: str | None = None,
    capabilities: list[str] | None = None,
    lease_seconds: float = 30.0,
) -> uuid.UUID:
    """Record this process and (re-)register its agents as idle; returns the session id."""
    if not ROLE_RE.match(role):
        raise errors.BadInput(f"bad role name {role!r}")
    for name in agents:
        if not NAME_RE.match(name):
            raise errors.BadInput(f"bad agent name {name!r} (lowercase letters, digits, . _ -)")
    async with conn.transaction():
        row = await (
            await conn.execute(
                query("insert_session"),
                {
                    "role": role,
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "agents": agents,
                    "lease_seconds": lease_seconds,
                },
            )
        ).fetchone()
        assert row is not None
        session_id: uuid.UUID = row["id"]
        # one statement for all of them: a process of 1,000 agents registers in one
        # round trip, not 1,000
        await conn.execute(
            query("upsert_agents"),
            {
                "names": agents,
                "role": role,
                "model": model,
                "capabilities": capabilities or [],
                "session": session_id,
            },
        )
        await conn.execute(
            query("record_activity"),
            {
                "kind": "session.started",
                "task": None,
                "message": f"{role} session on {socket.gethostname()} pid {os.getpid()}: "
                + ", ".join(agents),
                "data": Jsonb({"session": str(session_id), "agents": agents}),
                "actor": agents[0] if agents else role,
            },
        )
    return session_id


@translated
async def heartbeat(conn: Conn, session_id: uuid.UUID) -> bool:
    """Mark the session alive; False when it was reaped (declared dead) meanwhile."""
    row = await (await conn.execute(query("heartbeat_session"), {"session": session_id})).fetchone()
    return bool(row and row["alive"])


@translated
async def stop_session(conn: Conn, session_id: uuid.UUID, *, actor: str) -> None:
    """Mark the session stopped and its agents offline."""
    async with conn.transaction():
        await conn.execute(query("stop_session"), {"session": session_id})
        await conn.execute(
            query("record_activity"),
            {
                "kind": "session.stopped",
                "task": None,
                "message": f"session {session_id} stopped",
                "data": Jsonb({"session": str(session_id)}),
                "actor": actor,
            },
        )
