"""What the service hands the screen: immutable snapshots, one per part of the screen.

The service re-reads a part after a NOTIFY hint and sends the whole part again (never
a diff), so a lost hint or a reconnect is healed by the next snapshot.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# The board's columns: key, title, short title (narrow screens), the task states shown
# there. `approval` holds reviewed work whose merge waits for a person (`agentos task
# approve`); the last column holds exactly the states `retry` applies to (blocked,
# failed, cancelled).
COLUMNS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("inbox", "inbox", "inbox", ("inbox",)),
    ("assigned", "assigned", "assign", ("assigned",)),
    ("in_progress", "in progress", "in prog", ("in_progress",)),
    ("review", "review", "review", ("review",)),
    ("approval", "approval", "approve", ("approval",)),
    ("done", "done", "done", ("done",)),
    ("stuck", "blocked/failed", "blk/fail", ("blocked", "failed", "cancelled")),
)
COLUMN_KEYS = tuple(c[0] for c in COLUMNS)


@dataclass(frozen=True)
class Connection:
    """The database is reachable (online) or not, with the reason."""

    online: bool
    detail: str = ""


@dataclass(frozen=True)
class QueueDepth:
    """Ready, waiting and running work for one role (the queue_depth view)."""

    role: str
    ready: int
    waiting: int
    running: int


@dataclass(frozen=True)
class HeaderStats:
    """The header line: agents online / registered, queues, what waits for a person,
    done and spend today."""

    registered: int
    online: int
    queues: tuple[QueueDepth, ...]
    done_today: int
    spend_today: Decimal
    awaiting: int = 0  # merges to approve and budgets to raise: what waits for a person
    unread: int = 0  # the person's messages not read yet


@dataclass(frozen=True)
class AgentRow:
    """One agent as the agents panel shows it (status: idle, working, offline, dead)."""

    name: str
    role: str
    status: str
    current_task_id: int | None
    current_task: str | None
    last_heartbeat: dt.datetime | None
    spend_today: Decimal
    model: str | None


@dataclass(frozen=True)
class Agents:
    """The agents panel."""

    rows: tuple[AgentRow, ...]
    total: int


@dataclass(frozen=True)
class Card:
    """A task on the board."""

    id: int
    status: str
    priority: int
    title: str
    role: str
    assignee: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    attempts: int
    max_attempts: int


@dataclass(frozen=True)
class Column:
    """One board column: its first cards and the total count (by SQL)."""

    key: str
    title: str
    cards: tuple[Card, ...]
    total: int


@dataclass(frozen=True)
class Board:
    """The whole board under the current filter."""

    columns: tuple[Column, ...]
    filter: str | None


@dataclass(frozen=True)
class ActivityRow:
    """One line of the activity feed."""

    id: int
    created_at: dt.datetime
    kind: str
    actor: str | None
    task_id: int | None
    message: str


@dataclass(frozen=True)
class Feed:
    """The newest activities under the current filter, newest first."""

    rows: tuple[ActivityRow, ...]
    filter: str | None


@dataclass(frozen=True)
class Step:
    """One step of an agent's transcript (agentos.steps)."""

    id: int
    stage: str
    seq: int
    agent: str
    attempt: int
    kind: str
    tool_name: str | None
    content: Any  # parsed JSON, or the cut text when the content was too long
    truncated: bool
    created_at: dt.datetime


@dataclass(frozen=True)
class MessageRow:
    """A message about a task."""

    id: int
    created_at: dt.datetime
    from_agent: str | None
    to_agent: str | None
    kind: str
    body: str


@dataclass(frozen=True)
class TaskRef:
    """Another task named by this one (dependency, dependent, subtask)."""

    id: int
    title: str
    status: str


@dataclass(frozen=True)
class TaskDetail:
    """Everything the task screen shows about one task."""

    task: dict[str, Any]
    depends_on: tuple[TaskRef, ...]
    dependents: tuple[TaskRef, ...]
    subtasks: tuple[TaskRef, ...]
    subtask_total: int
    steps: tuple[Step, ...]
    step_total: int
    messages: tuple[MessageRow, ...]
    activities: tuple[ActivityRow, ...]
    cost_usd: Decimal
    calls: int
    prompt_tokens: int
    completion_tokens: int
    related: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class TaskMissing:
    """The task screen's task does not exist (deleted, or a wrong id)."""

    task_id: int


@dataclass(frozen=True)
class ConversationRef:
    """One conversation the conversations screen lists: the person's inbox, an agent, a
    channel or a task's thread. key: "inbox", "agent:NAME", "channel:NAME", "task:ID"."""

    key: str
    kind: str
    title: str
    unread: int
    detail: str = ""


@dataclass(frozen=True)
class ConversationMessage:
    """A message as the conversations screen shows it; new: the person's mail, unread."""

    id: int
    created_at: dt.datetime
    from_agent: str | None
    to_agent: str | None
    task_id: int | None
    channel: str | None
    kind: str
    body: str
    reply_to: int | None
    new: bool


@dataclass(frozen=True)
class Conversations:
    """The conversations screen: what can be read, and the selected conversation."""

    reader: str
    refs: tuple[ConversationRef, ...]
    selected: str
    messages: tuple[ConversationMessage, ...]
