"""An agent's memory: one freeform text it reads at the start of work and rewrites.

The text lives in `agents.memory`. It is capped (MAX_MEMORY characters) because it is
put into every prompt of the agent; a write beyond the cap is refused, not truncated,
so the agent decides what to forget. Each write is recorded in the activity log
(its size, not its text).
"""

from __future__ import annotations

from agentos.kernel import errors, redact
from agentos.kernel.db import Conn, translated
from agentos.sql import query
from psycopg.types.json import Jsonb

MAX_MEMORY = 20_000

_READ = "SELECT memory FROM agentos.agents WHERE name = %(name)s"
_WRITE = (
    "UPDATE agentos.agents SET memory = %(text)s, updated_at = now() "
    "WHERE name = %(name)s RETURNING name"
)


@translated
async def read_memory(conn: Conn, agent: str) -> str:
    """The agent's memory ('' when it has none); NotFound for an unknown agent."""
    row = await (await conn.execute(_READ, {"name": agent})).fetchone()
    if row is None:
        raise errors.NotFound(f"no agent {agent!r}")
    text: str = row["memory"]
    return text


@translated
async def write_memory(conn: Conn, agent: str, text: str) -> None:
    """Replace the agent's memory (redacted); BadInput beyond MAX_MEMORY characters."""
    text = redact.redact_text(text)
    if len(text) > MAX_MEMORY:
        raise errors.BadInput(
            f"memory would be {len(text)} characters; the limit is {MAX_MEMORY} "
            "(keep what matters, drop the rest)"
        )
    async with conn.transaction():
        row = await (await conn.execute(_WRITE, {"name": agent, "text": text})).fetchone()
        if row is None:
            raise errors.NotFound(f"no agent {agent!r}")
        await conn.execute(
            query("record_activity"),
            {
                "kind": "agent.memory",
                "task": None,
                "message": f"memory rewritten ({len(text)} characters)",
                "data": Jsonb({"chars": len(text)}),
                "actor": agent,
            },
        )
