"""Messages between people and agents: direct, on a task's thread, or broadcast.

A message has at most one addressee (`to_agent`) and at most one task (`task_id`):

* direct: `to_agent` set. The addressee is woken: a `message` activation for
  `agent:<name>` is enqueued in the same transaction as the insert (one queued
  activation per agent at a time, so a burst of messages wakes it once);
* task thread: `task_id` set, no addressee. Whoever holds or is assigned the task
  reads it between steps; nobody is woken;
* broadcast: neither. Every agent sees it; nobody is woken.

Read receipts are the single `read_at` column: the first reader marks a message read.
That is exact for direct messages (one reader) and for task threads (one holder at a
time); a broadcast read by one agent no longer shows as unread to the others
(docs/decisions/030-tools.md). The insert trigger records the `message.sent` activity
and sends the `agentos_message` NOTIFY.
"""

from __future__ import annotations

from agentos.kernel import errors, redact
from agentos.kernel.db import Conn, translated
from agentos.kernel.models import BIGINT_MAX, NAME_RE, Message, plain_text
from agentos.sql import query
from psycopg.types.json import Jsonb

KINDS = ("comment", "status", "review", "question", "answer", "broadcast")
MAX_BODY = 100_000
MAX_LIST = 500

# Messages an agent should see: addressed to it, broadcasts, and every message on a
# task it holds or is assigned. Its own messages are not its mail. Newest first, so
# LIMIT keeps the latest; callers reverse to reading order.
_LIST_MESSAGES = """
SELECT m.* FROM agentos.messages m
WHERE (%(task)s::bigint IS NULL OR m.task_id = %(task)s::bigint)
  AND (NOT %(unread)s::boolean OR m.read_at IS NULL)
  AND (%(agent)s::text IS NULL OR (
        m.from_agent IS DISTINCT FROM %(agent)s::text
        AND (m.to_agent = %(agent)s::text
             OR (m.to_agent IS NULL AND (m.task_id IS NULL OR m.kind = 'broadcast'))
             OR m.task_id IN (SELECT t.id FROM agentos.tasks t
                              WHERE t.lease_agent = %(agent)s::text
                                 OR t.assignee = %(agent)s::text))))
ORDER BY m.id DESC
LIMIT %(limit)s
"""

_MARK_READ = """
UPDATE agentos.messages SET read_at = now()
WHERE id = ANY(%(ids)s::bigint[]) AND read_at IS NULL
"""

_AGENT_EXISTS = "SELECT 1 FROM agentos.agents WHERE name = %(name)s"
_TASK_EXISTS = "SELECT 1 FROM agentos.tasks WHERE id = %(id)s"


@translated
async def send_message(
    conn: Conn,
    *,
    body: str,
    to_agent: str | None = None,
    task_id: int | None = None,
    from_agent: str | None = None,
    kind: str = "comment",
    wake: bool = True,
) -> Message:
    """Send a message; with no addressee and no task it is a broadcast.

    A direct message wakes its addressee (unless `wake` is false or it wrote to itself).
    """
    try:
        body = redact.redact_text(plain_text(body).strip())
    except ValueError as exc:
        raise errors.BadInput(f"message body {exc}") from None
    if not body:
        raise errors.BadInput("a message needs a body")
    if len(body) > MAX_BODY:
        raise errors.BadInput(f"message body is {len(body)} characters; the limit is {MAX_BODY}")
    if task_id is not None and not 1 <= task_id <= BIGINT_MAX:
        raise errors.BadInput(f"no task {task_id}")
    if to_agent is not None and not NAME_RE.match(to_agent):
        raise errors.BadInput(f"no agent {to_agent!r} (see `agentos agent list`)")
    if kind not in KINDS:
        raise errors.BadInput(f"unknown message kind {kind!r} (one of {', '.join(KINDS)})")
    if to_agent is None and task_id is None:
        kind = "broadcast"
    elif kind == "broadcast" and to_agent is not None:
        raise errors.BadInput("a broadcast has no addressee; drop to_agent or change the kind")
    async with conn.transaction():
        if (
            to_agent is not None
            and not await (await conn.execute(_AGENT_EXISTS, {"name": to_agent})).fetchone()
        ):
            raise errors.BadInput(f"no agent {to_agent!r} (see `agentos agent list`)")
        if (
            task_id is not None
            and not await (await conn.execute(_TASK_EXISTS, {"id": task_id})).fetchone()
        ):
            raise errors.BadInput(f"no task {task_id}")
        row = await (
            await conn.execute(
                query("insert_message"),
                {
                    "task": task_id,
                    "from_agent": from_agent,
                    "to_agent": to_agent,
                    "kind": kind,
                    "body": body,
                },
            )
        ).fetchone()
        assert row is not None
        if wake and to_agent is not None and to_agent != from_agent:
            await conn.execute(
                query("enqueue_activation"),
                {
                    "entrypoint": f"agent:{to_agent}",
                    "kind": "message",
                    "payload": Jsonb({"message_id": row["id"], "task_id": task_id}),
                    "priority": 0,
                    "dedupe_key": f"message:{to_agent}",
                },
            )
    return Message.model_validate(row)


@translated
async def list_messages(
    conn: Conn,
    *,
    agent: str | None = None,
    task_id: int | None = None,
    unread_only: bool = False,
    limit: int = 50,
) -> list[Message]:
    """The latest messages, oldest first: an agent's mail, a task's thread, or all."""
    if not 1 <= limit <= MAX_LIST:
        raise errors.BadInput(f"limit must be between 1 and {MAX_LIST}")
    rows = await (
        await conn.execute(
            _LIST_MESSAGES,
            {"agent": agent, "task": task_id, "unread": unread_only, "limit": limit},
        )
    ).fetchall()
    return [Message.model_validate(r) for r in reversed(rows)]


@translated
async def mark_read(conn: Conn, ids: list[int]) -> int:
    """Mark messages read (those already read keep their time); returns how many changed."""
    if not ids:
        return 0
    cur = await conn.execute(_MARK_READ, {"ids": list(ids)})
    return cur.rowcount


@translated
async def unread_direct(conn: Conn, agent: str, *, limit: int = 20) -> list[Message]:
    """Unread messages addressed to the agent, oldest first."""
    rows = await (
        await conn.execute(query("unread_direct_messages"), {"agent": agent, "limit": limit})
    ).fetchall()
    return [Message.model_validate(r) for r in rows]


@translated
async def answer(conn: Conn, question: Message, *, from_agent: str, body: str) -> Message:
    """Mark a question read and answer its asker on the same task (nobody is woken: two
    agents answering each other would never stop)."""
    try:
        text = redact.redact_text(plain_text(body).strip()) or "(no answer)"
    except ValueError:
        text = "(the answer held control characters and was dropped)"
    async with conn.transaction():
        row = await (
            await conn.execute(
                query("answer_message"),
                {"question": question.id, "from_agent": from_agent, "body": text[:MAX_BODY]},
            )
        ).fetchone()
    if row is None:
        raise errors.NotFound(f"no message {question.id}")
    return Message.model_validate(row)
