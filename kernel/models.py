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


class TaskStatus(enum.StrEnum):
    """The task states; transitions are data in agentos.task_transitions."""

    inbox = "inbox"
    assigned = "assigned"
    in_progress = "in_progress"
    review = "review"
    done = "done"
    blocked = "blocked"
    failed = "failed"
    cancelled = "cancelled"


TERMINAL = {TaskStatus.done}
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
    depends_on: list[int] = Field(default_factory=list)


class NewTask(BaseModel):
    """What `task create` accepts; validation errors become one-line BadInput errors."""

    title: str = Field(min_length=1, max_length=500)
    description: str = Field(default="", max_length=100_000)
    acceptance: str = Field(default="", max_length=100_000)
    role: str = "worker"
    review_role: str = "reviewer"
    assignee: str | None = None
    priority: int = Field(default=0, ge=-1000, le=1000)
    parent_id: int | None = Field(default=None, ge=1)
    depends_on: list[int] = Field(default_factory=list)
    max_attempts: int = Field(default=3, ge=1, le=100)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("title")
    @classmethod
    def _title_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("title must not be empty")
        return v.strip()

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
        if any(d < 1 for d in v):
            raise ValueError("dependency ids are positive integers")
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


class Message(BaseModel):
    """A message between people and agents."""

    model_config = ConfigDict(extra="ignore")

    id: int
    task_id: int | None
    from_agent: str | None
    to_agent: str | None
    kind: str
    body: str
    read_at: dt.datetime | None
    created_at: dt.datetime


def first_error(exc: Exception) -> str:
    """One line from a pydantic ValidationError (the first problem, with its field)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        return f"{loc}: {msg}" if loc else msg
    return str(exc).splitlines()[0]
