"""Rows the kernel hands out, as pydantic models (JSON-ready for `--json`)."""

from __future__ import annotations

import datetime as dt
import enum
import re
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
ROLE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
BIGINT_MAX = 2**63 - 1

# What a terminal or a log reader could be fooled by: C0 and C1 control characters (ESC
# starts escape sequences, CR rewrites a line, C1 CSI is an escape on some terminals),
# DEL, and the bidirectional overrides that reorder what is shown. The same classes are
# CHECK constraints in sql/004_input_checks.sql, so psql writes are held to them too.
_LINE_SPACE = re.compile(r"\s*[\t\n\r\x0b\x0c\x85\u2028\u2029]\s*")
_LINE_BAD = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_TEXT_BAD = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _refuse_unencodable(value: str) -> None:
    # Bytes that are not UTF-8 reach Python as lone surrogates (surrogateescape in argv).
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"is not valid UTF-8 (at character {exc.start + 1})") from None


def _describe(ch: str) -> str:
    return "a NUL byte" if ch == "\x00" else f"control character U+{ord(ch):04X}"


def one_line(value: str) -> str:
    """A title-like value: stripped, line breaks and tabs folded into one space.

    Any other control character (escape sequences, NUL, bidi overrides) is refused with
    ValueError rather than silently dropped, so what is stored is what was meant.
    """
    _refuse_unencodable(value)
    value = _LINE_SPACE.sub(" ", value).strip()
    bad = _LINE_BAD.search(value)
    if bad:
        raise ValueError(
            f"contains {_describe(bad.group())} at character {bad.start() + 1}; "
            "use plain one-line text"
        )
    return value


def plain_text(value: str) -> str:
    """A body-like value: newlines and tabs kept (CRLF -> LF), other control characters refused."""
    _refuse_unencodable(value)
    value = value.replace("\r\n", "\n")
    bad = _TEXT_BAD.search(value)
    if bad:
        raise ValueError(
            f"contains {_describe(bad.group())} at character {bad.start() + 1}; "
            "only newlines and tabs are allowed"
        )
    return value


def printable(value: str, *, keep_newlines: bool = False) -> str:
    """value safe to print on a terminal: control characters shown as \\xNN escapes.

    For output of rows written before the checks existed, or by agents (results, errors).
    """
    allowed = "\n\t" if keep_newlines else ""

    def esc(m: re.Match[str]) -> str:
        ch = m.group()
        return ch if ch in allowed else ch.encode("unicode_escape").decode("ascii")

    return _LINE_BAD.sub(esc, value.encode("utf-8", "replace").decode("utf-8"))


class TaskStatus(enum.StrEnum):
    """The task states; transitions are data in agentos.task_transitions."""

    inbox = "inbox"
    assigned = "assigned"
    in_progress = "in_progress"
    review = "review"
    approval = "approval"  # approved by review; the merge waits for a person
    done = "done"
    blocked = "blocked"
    failed = "failed"
    cancelled = "cancelled"


TERMINAL = {TaskStatus.done}
APPROVALS = ("auto", "human")
RETRYABLE = {TaskStatus.failed, TaskStatus.blocked, TaskStatus.cancelled}


class Task(BaseModel):
    """A task row (with its dependency ids when loaded through get/list)."""

    model_config = ConfigDict(extra="ignore")

    id: int
    title: str
    description: str
    acceptance: str
    status: TaskStatus
    priority: int
    role: str
    review_role: str
    assignee: str | None
    created_by: str
    parent_id: int | None
    branch: str | None
    result: str | None
    error: str | None
    attempts: int
    max_attempts: int
    rejections: int
    available_at: dt.datetime
    lease_session: uuid.UUID | None
    lease_agent: str | None
    lease_token: uuid.UUID | None
    lease_expires_at: dt.datetime | None
    metadata: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    budget_usd: float | None = None
    approval: str | None = None  # 'human' | 'auto' | None (the review role decides)
    depends_on: list[int] = Field(default_factory=list)


class NewTask(BaseModel):
    """What `task create` accepts; validation errors become one-line BadInput errors."""

    title: str = Field(min_length=1)
    description: str = Field(default="", max_length=100_000)
    acceptance: str = Field(default="", max_length=100_000)
    role: str = "worker"
    review_role: str = "reviewer"
    assignee: str | None = None
    priority: int = Field(default=0, ge=-1000, le=1000)
    parent_id: int | None = Field(default=None, ge=1, le=BIGINT_MAX)
    depends_on: list[int] = Field(default_factory=list)
    max_attempts: int = Field(default=3, ge=1, le=100)
    metadata: dict[str, Any] = Field(default_factory=dict)
    # USD for the task's LLM calls (None: the role's task_budget_usd); numeric(14, 6)
    budget_usd: float | None = Field(default=None, gt=0, le=99_999_999, allow_inf_nan=False)
    approval: str | None = None

    @field_validator("approval")
    @classmethod
    def _approval(cls, v: str | None) -> str | None:
        if v is not None and v not in APPROVALS:
            raise ValueError(f"must be one of {', '.join(APPROVALS)} (or unset), not {v!r}")
        return v

    @field_validator("title")
    @classmethod
    def _title_one_line(cls, v: str) -> str:
        v = one_line(v)
        if not v:
            raise ValueError("must not be empty")
        if len(v) > 500:
            raise ValueError(f"is {len(v)} characters; the limit is 500")
        return v

    @field_validator("description", "acceptance")
    @classmethod
    def _body_text(cls, v: str) -> str:
        return plain_text(v)

    @field_validator("role", "review_role")
    @classmethod
    def _role_name(cls, v: str) -> str:
        if not ROLE_RE.match(v):
            raise ValueError(f"bad role name {v!r} (lowercase letters, digits, - and _)")
        return v

    @field_validator("assignee")
    @classmethod
    def _agent_name(cls, v: str | None) -> str | None:
        if v is not None and not NAME_RE.match(v):
            raise ValueError(f"bad agent name {v!r}")
        return v

    @field_validator("depends_on")
    @classmethod
    def _deps(cls, v: list[int]) -> list[int]:
        if any(not 1 <= d <= BIGINT_MAX for d in v):
            raise ValueError(f"dependency ids are integers from 1 to {BIGINT_MAX}")
        return sorted(set(v))


class Activity(BaseModel):
    """One row of the audit log."""

    model_config = ConfigDict(extra="ignore")

    id: int
    created_at: dt.datetime
    kind: str
    actor: str | None
    task_id: int | None
    message: str
    data: dict[str, Any]


class Schedule(BaseModel):
    """A cron schedule that fires activations."""

    model_config = ConfigDict(extra="ignore")

    id: int
    name: str
    cron: str
    target_role: str | None
    target_agent: str | None
    activation: str
    payload: dict[str, Any]
    precondition: str | None
    enabled: bool
    next_fire_at: dt.datetime
    last_fired_at: dt.datetime | None
    created_at: dt.datetime
    # set: each tick creates a task from these fields (title, role, priority, ...)
    task_template: dict[str, Any] | None = None


class Message(BaseModel):
    """A message between people and agents (from_agent and to_agent name either).

    thread_id is the first message's id of its conversation, reply_to the message it
    answers; channel names its channel; woken lists the agents it woke; read (when a
    reader asked) whether that reader has read it.
    """

    model_config = ConfigDict(extra="ignore")

    id: int
    task_id: int | None
    from_agent: str | None
    to_agent: str | None
    kind: str
    body: str
    read_at: dt.datetime | None
    created_at: dt.datetime
    thread_id: int | None = None
    reply_to: int | None = None
    channel_id: int | None = None
    channel: str | None = None
    mentions: list[str] = Field(default_factory=list)
    woken: list[str] = Field(default_factory=list)
    read: bool | None = None


class Channel(BaseModel):
    """A named group of agents and people; a post wakes the members it @mentions."""

    model_config = ConfigDict(extra="ignore")

    id: int
    name: str
    description: str
    created_by: str
    created_at: dt.datetime
    members: list[str] = Field(default_factory=list)
    messages: int | None = None
    last_message_at: dt.datetime | None = None
    unread: int | None = None


def first_error(exc: Exception) -> str:
    """One line from a pydantic ValidationError (the first problem, with its field)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        return f"{loc}: {msg}" if loc else msg
    return str(exc).splitlines()[0]
