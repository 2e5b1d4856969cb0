"""Conversations between people and agents: direct, on a task's thread, in a channel, or
broadcast; threaded, with read receipts per reader.

An addressee is a name: an agent's (agentos.agents) or a person's (agentos.people; a
person is registered the first time they write, as AGENTOS_USER or their login name).
A message has at most one addressee (`to_agent`), and at most one of a task (its
thread) and a channel:

* direct: `to_agent` set; an agent addressee is woken;
* task thread: `task_id` set, no addressee; the task's holder is woken for a question
  (or anything a person writes), and answers it; with nobody holding the task it waits
  for whoever takes the task next (the runner answers it when the work starts, and it
  is in the work's prompt);
* channel: `channel_id` set; the members it @mentions are woken, nobody else;
* broadcast: none of these. Every agent sees it; nobody is woken.

An answer goes back to whoever wrote, in the same thread (`reply_to`, `thread_id`), on
the same task or channel. Answers, reviews and status notes wake nobody, so two agents
never answer each other forever. Who is woken is decided by the insert trigger and kept
on the row (`woken`); the trigger also records the `message.sent` activity (with the
message id, so the whole text stays reachable) and sends the `agentos_message` NOTIFY.

Read receipts are rows of agentos.message_reads, one per (message, reader): a broadcast
read by one agent stays unread for the others. `read_at` is the addressee's receipt.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from agentos.kernel import errors, redact
from agentos.kernel.db import Conn, Kernel, translated
from agentos.kernel.models import BIGINT_MAX, NAME_RE, Message, plain_text
from agentos.sql import query

KINDS = ("comment", "status", "review", "question", "answer", "broadcast")
# kinds that wake nobody (sql/008_conversations.sql decides the same)
QUIET_KINDS = ("answer", "review", "status", "broadcast")
MAX_BODY = 100_000
MAX_LIST = 500
TASK_CHANNEL = re.compile(r"^task-([0-9]{1,19})$")


def task_channel(task_id: int) -> str:
    """The name of a task's thread as a channel."""
    return f"task-{task_id}"


def _msg(row: dict[str, Any]) -> Message:
    return Message.model_validate(row)


def check_name(name: str, what: str = "name") -> str:
    """A name of an agent, a person or a channel; BadInput otherwise."""
    if not NAME_RE.match(name):
        raise errors.BadInput(
            f"{what} {name!r} is not a name (lower-case letters, digits, '.', '_' or '-', "
            "at most 63 characters)"
        )
    return name


@translated
async def addressee_kind(conn: Conn, name: str) -> str | None:
    """'agent' or 'person' for a known name, None for an unknown one."""
    if not NAME_RE.match(name):
        return None
    row = await (await conn.execute(query("addressee_kind"), {"name": name})).fetchone()
    return str(row["kind"]) if row else None


@translated
async def ensure_person(conn: Conn, name: str) -> None:
    """Register a person by name (idempotent); BadInput when an agent has the name."""
    check_name(name, "person")
    if await addressee_kind(conn, name) == "agent":
        raise errors.BadInput(
            f"{name!r} is an agent's name; set AGENTOS_USER to the name you talk to the team under"
        )
    await conn.execute(query("ensure_person"), {"name": name})


async def resolve_channel(conn: Conn, channel: str) -> tuple[int | None, int | None]:
    """(task_id, channel_id) of a channel name: `task-N` is task N's thread."""
    m = TASK_CHANNEL.match(channel)
    if m:
        return int(m.group(1)), None
    row = await (await conn.execute(query("channel_by_name"), {"name": channel})).fetchone()
    if row is None:
        raise errors.BadInput(f"no channel {channel!r} (see `agentos channel list`)")
    return None, int(row["id"])


@translated
async def send_message(
    conn: Conn,
    *,
    body: str,
    to_agent: str | None = None,
    task_id: int | None = None,
    channel: str | None = None,
    from_agent: str | None = None,
    kind: str = "comment",
    reply_to: int | None = None,
    wake: bool = True,
    as_person: bool = False,
) -> Message:
    """Send a message; with no addressee, task, channel or reply_to it is a broadcast.

    `as_person`: from_agent is a person (registered if new). `reply_to` puts it in that
    message's thread (and on its task or channel). `wake=False` wakes nobody.
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
    if reply_to is not None and not 1 <= reply_to <= BIGINT_MAX:
        raise errors.BadInput(f"no message {reply_to}")
    if to_agent is not None and not NAME_RE.match(to_agent):
        raise errors.BadInput(f"no agent or person {to_agent!r} (see `agentos agent list`)")
    if kind not in KINDS:
        raise errors.BadInput(f"unknown message kind {kind!r} (one of {', '.join(KINDS)})")
    if channel is not None and task_id is not None:
        raise errors.BadInput("a message goes to a task's thread or to a channel, not both")
    if to_agent is None and task_id is None and channel is None and reply_to is None:
        kind = "broadcast"
    elif kind == "broadcast" and to_agent is not None:
        raise errors.BadInput("a broadcast has no addressee; drop to_agent or change the kind")
    async with conn.transaction():
        if as_person:
            if from_agent is None:
                raise errors.BadInput("a person's message needs their name")
            await ensure_person(conn, from_agent)
        if to_agent is not None and await addressee_kind(conn, to_agent) is None:
            raise errors.BadInput(f"no agent or person {to_agent!r} (see `agentos agent list`)")
        channel_id = None
        if channel is not None:
            task_id, channel_id = await resolve_channel(conn, channel)
        if task_id is not None and (
            await (await conn.execute(query("get_task"), {"id": task_id})).fetchone() is None
        ):
            raise errors.BadInput(f"no task {task_id}")
        if reply_to is not None and (
            await (await conn.execute(query("get_message"), {"id": reply_to})).fetchone() is None
        ):
            raise errors.BadInput(f"no message {reply_to}")
        if not wake:
            await conn.execute(query("set_message_wake"), {"wake": "off"})
        row = await (
            await conn.execute(
                query("insert_message"),
                {
                    "task": task_id,
                    "channel": channel_id,
                    "from_agent": from_agent,
                    "to_agent": to_agent,
                    "kind": kind,
                    "body": body,
                    "reply_to": reply_to,
                },
            )
        ).fetchone()
        if not wake:
            await conn.execute(query("set_message_wake"), {"wake": "on"})
        assert row is not None
    return _msg({**row, "channel": channel})


@translated
async def get_message(conn: Conn, message_id: int) -> Message:
    """One message; NotFound when there is none."""
    if not 1 <= message_id <= BIGINT_MAX:
        raise errors.NotFound(f"no message {message_id}")
    row = await (await conn.execute(query("get_message"), {"id": message_id})).fetchone()
    if row is None:
        raise errors.NotFound(f"no message {message_id}")
    return _msg(row)


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIST:
        raise errors.BadInput(f"limit must be between 1 and {MAX_LIST}")


@translated
async def list_messages(
    conn: Conn,
    *,
    agent: str | None = None,
    task_id: int | None = None,
    unread_only: bool = False,
    limit: int = 50,
) -> list[Message]:
    """The latest messages, oldest first: an agent's mail (unread: by it), or all."""
    _check_limit(limit)
    rows = await (
        await conn.execute(
            query("agent_mail"),
            {"agent": agent, "task": task_id, "unread": unread_only, "limit": limit},
        )
    ).fetchall()
    return [_msg(r) for r in reversed(rows)]


@translated
async def task_thread(conn: Conn, task_id: int, *, limit: int = MAX_LIST) -> list[Message]:
    """The latest messages on a task's thread, oldest first."""
    _check_limit(limit)
    rows = await (
        await conn.execute(query("task_thread"), {"task": task_id, "limit": limit})
    ).fetchall()
    return [_msg(r) for r in reversed(rows)]


@translated
async def mark_read(conn: Conn, ids: list[int], *, reader: str) -> int:
    """Record that `reader` read these messages; returns how many were new to them."""
    if not ids:
        return 0
    cur = await conn.execute(query("mark_read"), {"ids": list(ids), "reader": reader})
    return len(await cur.fetchall())


@translated
async def conversation(
    conn: Conn,
    *,
    reader: str,
    with_name: str | None = None,
    task_id: int | None = None,
    channel: str | None = None,
    unread_only: bool = False,
    after_id: int = 0,
    limit: int = 50,
) -> list[Message]:
    """A reader's conversations, oldest first, each saying whether the reader read it.

    With nothing else: their mail and what they wrote. `with_name`: what passed between
    them and that agent or person; `task_id`: that task's thread; `channel`: that
    channel (`task-N` is task N's thread). Only ids above `after_id`.
    """
    _check_limit(limit)
    channel_id = None
    if channel is not None:
        channel_task, channel_id = await resolve_channel(conn, channel)
        if channel_task is not None:
            if task_id is not None and task_id != channel_task:
                raise errors.BadInput(f"channel {channel} is task {channel_task}'s thread")
            task_id = channel_task
    if with_name is not None and await addressee_kind(conn, with_name) is None:
        raise errors.BadInput(f"no agent or person {with_name!r} (see `agentos agent list`)")
    if task_id is not None and (
        await (await conn.execute(query("get_task"), {"id": task_id})).fetchone() is None
    ):
        raise errors.NotFound(f"no task {task_id}")
    rows = await (
        await conn.execute(
            query("conversation"),
            {
                "me": reader,
                "with": with_name,
                "task": task_id,
                "channel": channel_id,
                "unread": unread_only,
                "after": after_id,
                "limit": limit,
            },
        )
    ).fetchall()
    return [_msg(r) for r in reversed(rows)]


@translated
async def thread(
    conn: Conn, thread_id: int, *, reader: str, limit: int = MAX_LIST
) -> list[Message]:
    """A whole thread (its first messages, up to limit), oldest first, read flags for reader."""
    _check_limit(limit)
    rows = await (
        await conn.execute(
            query("thread_messages"), {"thread": thread_id, "me": reader, "limit": limit}
        )
    ).fetchall()
    return [_msg(r) for r in rows]


@translated
async def by_ids(conn: Conn, ids: list[int]) -> dict[int, Message]:
    """Messages by id (those that exist)."""
    if not ids:
        return {}
    rows = await (await conn.execute(query("messages_by_ids"), {"ids": list(ids)})).fetchall()
    return {int(r["id"]): _msg(r) for r in rows}


@translated
async def unread_count(conn: Conn, reader: str) -> int:
    """How many of the reader's mail they have not read."""
    row = await (await conn.execute(query("unread_count"), {"me": reader})).fetchone()
    return int(row["n"]) if row else 0


@translated
async def answers_to(conn: Conn, message_id: int) -> list[Message]:
    """The answers to a message, oldest first."""
    rows = await (await conn.execute(query("answers_to"), {"id": message_id})).fetchall()
    return [_msg(r) for r in rows]


# ------------------------------------------------------------------ answering ----


@translated
async def pending_answers(conn: Conn, agent: str, *, limit: int = 5) -> list[Message]:
    """What the agent owes an answer to, oldest first (see sql/messages.sql)."""
    rows = await (
        await conn.execute(query("pending_answers"), {"agent": agent, "limit": limit})
    ).fetchall()
    return [_msg(r) for r in rows]


@dataclass
class AnswerContext:
    """What an agent answering a message sees: itself, its task, its steps, the thread."""

    agent: str
    role: str
    memory: str
    task: dict[str, Any] | None  # id, title, status, holder
    steps: list[dict[str, Any]] = field(default_factory=list)  # newest first
    thread: list[Message] = field(default_factory=list)  # oldest first, before the message


@translated
async def answer_context(
    conn: Conn, agent: str, message: Message, *, steps: int = 6, thread: int = 6
) -> AnswerContext:
    """The agent's memory, its current task (or the message's), its last steps on that
    task and the messages of the thread before this one."""
    row = await (
        await conn.execute(query("answer_context"), {"agent": agent, "task": message.task_id})
    ).fetchone()
    if row is None:
        raise errors.NotFound(f"no agent {agent!r}")
    task = None
    recent: list[dict[str, Any]] = []
    if row["task_id"] is not None:
        task = {
            "id": row["task_id"],
            "title": row["title"],
            "status": row["task_status"],
            "holder": row["lease_agent"],
        }
        recent = list(
            await (
                await conn.execute(
                    query("agent_recent_steps"),
                    {"agent": agent, "task": row["task_id"], "limit": steps},
                )
            ).fetchall()
        )
    earlier = await (
        await conn.execute(
            query("thread_before"),
            {"thread": message.thread_id or message.id, "before": message.id, "limit": thread},
        )
    ).fetchall()
    return AnswerContext(
        agent=agent,
        role=row["role"],
        memory=row["memory"] or "",
        task=task,
        steps=recent,
        thread=[_msg(r) for r in reversed(earlier)],
    )


@translated
async def answer(conn: Conn, question: Message, *, from_agent: str, body: str) -> Message | None:
    """Answer a message: to whoever wrote it, in its thread, on its task or channel; the
    question is marked read by the answerer. None when this agent answered it already.
    Nobody is woken (two agents answering each other would never stop)."""
    try:
        text = redact.redact_text(plain_text(body).strip()) or "(no answer)"
    except ValueError:
        text = "(the answer held control characters and was dropped)"
    async with conn.transaction():
        exists = await (await conn.execute(query("get_message"), {"id": question.id})).fetchone()
        if exists is None:
            raise errors.NotFound(f"no message {question.id}")
        row = await (
            await conn.execute(
                query("answer_message"),
                {"question": question.id, "from_agent": from_agent, "body": text[:MAX_BODY]},
            )
        ).fetchone()
    return _msg(row) if row is not None else None


async def wait_for_answers(
    kernel: Kernel, message_id: int, *, expect: int = 1, timeout: float
) -> list[Message]:
    """Wait (at most `timeout` seconds) until `expect` answers to a message exist; returns
    the answers there are by then, oldest first. Woken by the messages NOTIFY, with one
    poll interval as the most a lost notification costs."""
    from agentos.kernel import bus

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    listener = await bus.Listener(kernel.url, [bus.MESSAGE]).start()
    try:
        while True:
            async with kernel.connection() as conn:
                found = await answers_to(conn, message_id)
            left = deadline - loop.time()
            if len(found) >= expect or left <= 0:
                return found
            await listener.wait(min(left, kernel.settings.poll_interval))
    finally:
        await listener.stop()
