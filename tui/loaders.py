"""The loaders: one part of the screen re-read as an immutable snapshot (model.py).

Each takes a connection and what the screen asks for (the clock, the filter, the page
sizes, the open task) and reads through agentos.kernel.views: the SQL is the kernel's
(sql/tui.sql), the decoding into snapshots is here. Every string that came from the
database passes through fmt.shown on its way into a snapshot, so no widget ever
renders a stored control character.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from agentos.kernel import views
from agentos.kernel.db import Conn
from agentos.tui import model
from agentos.tui.clock import start_of_day
from agentos.tui.fmt import shown, shown_tree

PAGE = 40  # cards per column before "more" is asked for
FEED_LIMIT = 50  # the feed panel is under half the screen: 50 rows fill a 100-line terminal
AGENT_LIMIT = 200
STEP_LIMIT = 300
MESSAGE_LIMIT = 100
SUBTASK_LIMIT = 50
TASK_ACTIVITY_LIMIT = 30
CONVERSATION_LIMIT = 100  # messages of the selected conversation
CONVERSATION_LIST_LIMIT = 50  # agents, channels and tasks each


def parse_filter(text: str | None) -> dict[str, Any]:
    """The filter's query parameters: an ILIKE pattern, and an id when it looks like one."""
    text = (text or "").strip()
    if not text:
        return {"like": None, "qid": None}
    bare = text.removeprefix("#")
    escaped = text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
    return {"like": f"%{escaped}%", "qid": int(bare) if bare.isdigit() else None}


def time_params(now: dt.datetime) -> dict[str, Any]:
    """The clock's parameters of the reads: now and the start of its day."""
    return {"now": now, "day": start_of_day(now)}


def _opt(text: str | None) -> str | None:
    return None if text is None else shown(text)


async def load_header(conn: Conn, now: dt.datetime, reader: str | None = None) -> model.HeaderStats:
    """The header line: agents online / registered, queues, done and spend today, and
    the reader's unread messages."""
    row = await views.read_one(conn, "header_stats", time_params(now))
    queues = await views.queue_depth(conn)
    assert row is not None
    unread = 0
    if reader is not None:
        got = await views.read_one(conn, "header_unread", {"me": reader})
        unread = int(got["unread"]) if got else 0
    return model.HeaderStats(
        registered=row["registered"],
        online=row["online"],
        queues=tuple(
            model.QueueDepth(shown(q["role"]), q["ready"], q["waiting"], q["running"])
            for q in queues
        ),
        done_today=row["done_today"],
        spend_today=Decimal(row["spend_today"]),
        awaiting=row["awaiting"],
        unread=unread,
    )


def agent_status(row: Mapping[str, Any]) -> str:
    """What the panel shows: dead, offline, or the agent's own status while it beats."""
    if row["session_status"] == "dead":
        return "dead"  # its process stopped beating and was reaped
    if row["status"] == "offline":
        return "offline"  # stopped cleanly, or never started
    if not row["alive"]:
        return "dead"  # says it is up, but its process stopped beating
    return str(row["status"])


async def load_agents(conn: Conn, now: dt.datetime) -> model.Agents:
    """The agents panel: every agent (up to AGENT_LIMIT) with liveness at `now`."""
    rows = await views.read(conn, "agents", {**time_params(now), "limit": AGENT_LIMIT})
    out = [
        model.AgentRow(
            name=shown(r["name"]),
            role=shown(r["role"]),
            status=agent_status(r),
            current_task_id=r["current_task_id"],
            current_task=_opt(r["current_task"]),
            last_heartbeat=r["last_heartbeat"],
            spend_today=Decimal(r["spend_today"]),
            model=_opt(r["model"]),
        )
        for r in rows
    ]
    return model.Agents(tuple(out), rows[0]["total"] if rows else 0)


async def load_board(conn: Conn, text: str | None, limits: Mapping[str, int]) -> model.Board:
    """The board: each column's first cards under the filter, and its total."""
    params = parse_filter(text)
    pages = {f"l{i}": limits[k] for i, k in enumerate(model.COLUMN_KEYS)}
    counts = {r["status"]: r["n"] for r in await views.read(conn, "board_counts", params)}
    rows = await views.read(conn, "board_cards", {**params, **pages})
    cards: list[list[model.Card]] = [[] for _ in model.COLUMNS]
    for r in rows:
        cards[r["col"]].append(
            model.Card(
                id=r["id"],
                status=r["status"],
                priority=r["priority"],
                title=shown(r["title"]),
                role=shown(r["role"]),
                assignee=_opt(r["assignee"]),
                created_at=r["created_at"],
                updated_at=r["updated_at"],
                attempts=r["attempts"],
                max_attempts=r["max_attempts"],
            )
        )
    columns = tuple(
        model.Column(
            key=key,
            title=title,
            cards=tuple(cards[i]),
            total=sum(counts.get(s, 0) for s in statuses),
        )
        for i, (key, title, _short, statuses) in enumerate(model.COLUMNS)
    )
    return model.Board(columns, text)


async def load_feed(conn: Conn, text: str | None) -> model.Feed:
    """The activity feed: the newest activities under the filter."""
    rows = await views.read(conn, "feed", {**parse_filter(text), "limit": FEED_LIMIT})
    return model.Feed(tuple(activity_row(r) for r in rows), text)


async def load_task(conn: Conn, task_id: int) -> model.TaskDetail | model.TaskMissing:
    """The task screen: the row, its relations, transcript, messages, activity and cost."""
    p = {"id": task_id}

    async def rows(name: str, **extra: Any) -> list[dict[str, Any]]:
        return await views.read(conn, name, {**p, **extra})

    found = await rows("task")
    if not found:
        return model.TaskMissing(task_id)
    deps = await rows("task_depends_on")
    dependents = await rows("task_dependents")
    subtasks = await rows("task_subtasks", limit=SUBTASK_LIMIT)
    steps = await rows("task_steps", limit=STEP_LIMIT)
    messages = await rows("task_messages", limit=MESSAGE_LIMIT)
    activities = await rows("task_activities", limit=TASK_ACTIVITY_LIMIT)
    cost = (await rows("task_cost"))[0]

    def ref(r: dict[str, Any]) -> model.TaskRef:
        return model.TaskRef(r["id"], shown(r["title"]), r["status"])

    return model.TaskDetail(
        task=shown_tree(found[0]),  # result, error, branch...: anything an agent wrote
        depends_on=tuple(ref(r) for r in deps),
        dependents=tuple(ref(r) for r in dependents),
        subtasks=tuple(ref(r) for r in subtasks),
        subtask_total=subtasks[0]["total"] if subtasks else 0,
        steps=tuple(step_row(r) for r in steps),
        step_total=steps[0]["total"] if steps else 0,
        messages=tuple(
            model.MessageRow(
                r["id"],
                r["created_at"],
                _opt(r["from_agent"]),
                _opt(r["to_agent"]),
                shown(r["kind"]),
                shown(r["body"]),
            )
            for r in messages
        ),
        activities=tuple(activity_row(r) for r in activities),
        cost_usd=Decimal(cost["cost_usd"]),
        calls=cost["calls"],
        prompt_tokens=cost["prompt_tokens"],
        completion_tokens=cost["completion_tokens"],
        related=frozenset(r["id"] for r in (*deps, *dependents, *subtasks)),
    )


def activity_row(r: Mapping[str, Any]) -> model.ActivityRow:
    """One activity as the feed and the task screen show it."""
    return model.ActivityRow(
        r["id"],
        r["created_at"],
        shown(r["kind"]),
        _opt(r["actor"]),
        r["task_id"],
        shown(r["message"]),
    )


def step_row(r: Mapping[str, Any]) -> model.Step:
    """One transcript step; its JSON content decoded unless it was cut."""
    content: Any = r["content"]
    if not r["truncated"]:
        with contextlib.suppress(ValueError, TypeError):
            content = json.loads(r["content"])
    return model.Step(
        id=r["id"],
        stage=shown(r["stage"]),
        seq=r["seq"],
        agent=shown(r["agent"]),
        attempt=r["attempt"],
        kind=shown(r["kind"]),
        tool_name=_opt(r["tool_name"]),
        content=shown_tree(content),
        truncated=r["truncated"],
        created_at=r["created_at"],
    )


def conversation_params(reader: str, key: str) -> dict[str, Any]:
    """The conversation_messages read's parameters for a conversation key."""
    kind, _, name = key.partition(":")
    return {
        "me": reader,
        "agent": name if kind == "agent" else None,
        "channel": name if kind == "channel" else None,
        "task": int(name) if kind == "task" and name.isdigit() else None,
        "limit": CONVERSATION_LIMIT,
    }


async def load_conversations(conn: Conn, reader: str, selected: str) -> model.Conversations:
    """The conversations screen: the reader's inbox, agents, channels and tasks with
    their unread counts, and the selected conversation's last messages."""
    p = {"me": reader, "limit": CONVERSATION_LIST_LIMIT}
    agents = await views.read(conn, "conversation_agents", p)
    chans = await views.read(conn, "conversation_channels", p)
    task_rows = await views.read(conn, "conversation_tasks", p)
    unread = await views.read_one(conn, "header_unread", {"me": reader})
    refs = [
        model.ConversationRef("inbox", "inbox", "inbox", int(unread["unread"]) if unread else 0)
    ]
    refs += [
        model.ConversationRef(f"channel:{r['name']}", "channel", f"#{shown(r['name'])}",
                              r["unread"], shown(r["description"] or ""))
        for r in chans
    ]  # fmt: skip
    refs += [
        model.ConversationRef(f"agent:{r['name']}", "agent", shown(r["name"]), r["unread"],
                              shown(r["role"]))
        for r in agents
    ]  # fmt: skip
    refs += [
        model.ConversationRef(f"task:{r['id']}", "task", f"#{r['id']} {shown(r['title'])}",
                              r["unread"], r["status"])
        for r in task_rows
    ]  # fmt: skip
    rows = await views.read(conn, "conversation_messages", conversation_params(reader, selected))
    return model.Conversations(
        reader=reader,
        refs=tuple(refs),
        selected=selected,
        messages=tuple(
            model.ConversationMessage(
                id=r["id"],
                created_at=r["created_at"],
                from_agent=_opt(r["from_agent"]),
                to_agent=_opt(r["to_agent"]),
                task_id=r["task_id"],
                channel=_opt(r["channel"]),
                kind=shown(r["kind"]),
                body=shown(r["body"]),
                reply_to=r["reply_to"],
                new=bool(r["mine"]) and not r["read"],
            )
            for r in rows
        ),
    )
