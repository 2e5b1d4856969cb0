"""Agents as data: the team's roster, made, changed and removed by people.

An agent is a row of `agentos.agents`. Processes register the agents they are started
with (`--name`, the team's worker-1..N); a person *defines* agents (`agentos agent
create`): a name, a role, and what it adds to the role's configuration: a model, extra
instructions for its system prompt, skills of the library named in its prompt, and a
description. Its identity and memory are the row, so they outlive every process.

A defined agent is hosted by a process of its role, one live session at a time:
`adopt` hands a session the role's defined agents that no live session hosts (the
process of `agentos start`, or a role pod, calls it when it starts and every few
seconds after), and `release` gives one back (removed, or moved to another role).
An agent that holds work (a leased task, or an unfinished task assigned to it) cannot
be removed, nor moved to another role.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from typing import Any

from agentos.kernel import activities, errors
from agentos.kernel.db import Conn, translated
from agentos.kernel.memory import MAX_MEMORY
from agentos.kernel.models import NAME_RE, ROLE_RE, plain_text
from agentos.sql import query
from pydantic import BaseModel, ConfigDict, Field

MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$")
MAX_DESCRIPTION = 2000
MAX_INSTRUCTIONS = 20_000
UNSET: Any = object()  # edit(): "leave as is", distinct from None ("back to the role's")


class AgentRecord(BaseModel):
    """An agent row: identity, role, what it adds to its role, and where it runs."""

    model_config = ConfigDict(extra="ignore")

    name: str
    role: str
    status: str
    defined: bool
    description: str
    model: str | None  # the model its session runs (what its process registered)
    model_override: str | None
    instructions: str
    skills: list[str]
    memory: str
    created_by: str | None
    session_id: uuid.UUID | None
    current_task_id: int | None
    last_heartbeat: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class AgentDetail(AgentRecord):
    """What `agentos agent show` prints."""

    alive: bool = False
    current_task: str | None = None
    host: str | None = None
    pid: int | None = None
    cost_today: Decimal = Decimal(0)
    calls_today: int = 0
    work: list[dict[str, Any]] = Field(default_factory=list)
    skill_descriptions: dict[str, str] = Field(default_factory=dict)


class Overrides(BaseModel):
    """What an agent adds to its role's configuration when it runs."""

    role: str
    model: str | None
    instructions: str
    skills: list[dict[str, str]]


def _name(value: str, what: str = "agent name") -> str:
    if not NAME_RE.match(value):
        raise errors.BadInput(
            f"bad {what} {value!r} (lowercase letters, digits, . _ -, at most 63 characters)"
        )
    return value


def _role(value: str) -> str:
    if not ROLE_RE.match(value):
        raise errors.BadInput(f"bad role name {value!r} (lowercase letters, digits, - and _)")
    return value


def _model(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not MODEL_RE.match(value):
        raise errors.BadInput(
            f"bad model name {value!r} (a litellm model name such as openai/gpt-4o-mini)"
        )
    return value


def _text(value: str, what: str, limit: int) -> str:
    try:
        value = plain_text(value).strip()
    except ValueError as exc:
        raise errors.BadInput(f"{what} {exc}") from None
    if len(value) > limit:
        raise errors.BadInput(f"{what} is {len(value)} characters; the limit is {limit}")
    return value


async def _check_skills(conn: Conn, names: list[str]) -> list[str]:
    names = sorted({_name(n, "skill name") for n in names})
    if not names:
        return []
    rows = await (await conn.execute(query("known_skills"), {"names": names})).fetchall()
    missing = sorted(set(names) - {r["name"] for r in rows})
    if missing:
        raise errors.BadInput(
            f"no skill {', '.join(missing)} (see `agentos skill list`; add one with "
            "`agentos skill add`)"
        )
    return names


async def _work(conn: Conn, name: str) -> list[dict[str, Any]]:
    return list(await (await conn.execute(query("agent_work"), {"name": name})).fetchall())


def _describe_work(name: str, work: list[dict[str, Any]]) -> str:
    held = ", ".join(f"#{w['id']} {w['status']}" for w in work[:5])
    return f"agent {name} holds work ({held}{' ...' if len(work) > 5 else ''})"


async def _lock(conn: Conn, name: str) -> dict[str, Any]:
    row = await (await conn.execute(query("lock_agent"), {"name": name})).fetchone()
    if row is None:
        raise errors.NotFound(f"no agent {name!r} (see `agentos agent list`)")
    return dict(row)


@translated
async def create_agent(
    conn: Conn,
    *,
    name: str,
    role: str,
    model: str | None = None,
    description: str = "",
    instructions: str = "",
    skills: list[str] | tuple[str, ...] = (),
    memory: str = "",
    created_by: str | None = None,
) -> AgentRecord:
    """Define an agent; BadInput when the name is taken (nothing changed)."""
    params: dict[str, Any] = {
        "name": _name(name),
        "role": _role(role),
        "model_override": _model(model),
        "description": _text(description, "description", MAX_DESCRIPTION),
        "instructions": _text(instructions, "instructions", MAX_INSTRUCTIONS),
        "memory": memory,
        "created_by": created_by,
    }
    if len(memory) > MAX_MEMORY:
        raise errors.BadInput(f"memory is {len(memory)} characters; the limit is {MAX_MEMORY}")
    async with conn.transaction():
        params["skills"] = await _check_skills(conn, list(skills))
        row = await (await conn.execute(query("insert_defined_agent"), params)).fetchone()
        if row is None:
            raise errors.BadInput(
                f"agent {name} exists; change it with `agentos agent edit {name}` (nothing changed)"
            )
        await activities.record(
            conn,
            "agent.created",
            message=f"agent {name} created ({role})",
            data={"agent": name, "role": role, "model": params["model_override"]},
            actor=created_by,
        )
    return AgentRecord.model_validate(row)


@translated
async def get_agent(conn: Conn, name: str) -> AgentDetail:
    """One agent with its liveness, current task, work, skills and spend today."""
    row = await (await conn.execute(query("agent_detail"), {"name": name})).fetchone()
    if row is None:
        raise errors.NotFound(f"no agent {name!r} (see `agentos agent list`)")
    detail = AgentDetail.model_validate(row)
    detail.work = await _work(conn, name)
    if detail.skills:
        rows = await (
            await conn.execute(query("known_skills"), {"names": detail.skills})
        ).fetchall()
        detail.skill_descriptions = {r["name"]: r["description"] for r in rows}
    return detail


@translated
async def edit_agent(
    conn: Conn,
    name: str,
    *,
    actor: str | None = None,
    role: str | None = None,
    model: Any = UNSET,
    description: str | None = None,
    instructions: str | None = None,
    add_skills: list[str] | tuple[str, ...] = (),
    drop_skills: list[str] | tuple[str, ...] = (),
) -> AgentRecord:
    """Change an agent; `model=None` (or '') goes back to the role's model.

    A role change is refused while the agent holds work (nothing changed)."""
    set_model = model is not UNSET
    params: dict[str, Any] = {
        "name": name,
        "role": _role(role) if role is not None else None,
        "set_model": set_model,
        "model_override": _model(model) if set_model else None,
        "description": (
            _text(description, "description", MAX_DESCRIPTION) if description is not None else None
        ),
        "instructions": (
            _text(instructions, "instructions", MAX_INSTRUCTIONS)
            if instructions is not None
            else None
        ),
        "skills": None,
        "define": False,
    }
    async with conn.transaction():
        current = await _lock(conn, name)
        if role is not None and role != current["role"]:
            work = await _work(conn, name)
            if work:
                raise errors.BadInput(
                    f"{_describe_work(name, work)}; its role can change once that is done "
                    "(nothing changed)"
                )
        if add_skills or drop_skills:
            added = await _check_skills(conn, list(add_skills))
            dropped = {_name(s, "skill name") for s in drop_skills}
            params["skills"] = sorted((set(current["skills"]) | set(added)) - dropped)
        changed = [
            k
            for k, v in (
                ("role", params["role"]),
                ("description", params["description"]),
                ("instructions", params["instructions"]),
                ("skills", params["skills"]),
            )
            if v is not None and v != current[k]
        ]
        if set_model and params["model_override"] != current["model_override"]:
            changed.append("model")
        row = await (await conn.execute(query("update_agent"), params)).fetchone()
        assert row is not None
        if changed:
            await activities.record(
                conn,
                "agent.edited",
                message=f"agent {name}: {', '.join(changed)} changed",
                data={"agent": name, "changed": changed},
                actor=actor,
            )
    return AgentRecord.model_validate(row)


@translated
async def duplicate_agent(
    conn: Conn, name: str, new: str, *, actor: str | None = None, memory: bool = True
) -> AgentRecord:
    """A new defined agent with the same role, model, instructions, skills, description
    (and memory, unless `memory` is false)."""
    _name(new)
    async with conn.transaction():
        src = await _lock(conn, name)
        row = await (
            await conn.execute(
                query("insert_defined_agent"),
                {
                    "name": new,
                    "role": src["role"],
                    "model_override": src["model_override"],
                    "description": src["description"],
                    "instructions": src["instructions"],
                    "skills": src["skills"],
                    "memory": src["memory"] if memory else "",
                    "created_by": actor,
                },
            )
        ).fetchone()
        if row is None:
            raise errors.BadInput(f"agent {new} exists (nothing changed)")
        await activities.record(
            conn,
            "agent.created",
            message=f"agent {new} created as a copy of {name} ({src['role']})",
            data={"agent": new, "role": src["role"], "copy_of": name, "memory": memory},
            actor=actor,
        )
    return AgentRecord.model_validate(row)


@translated
async def remove_agent(conn: Conn, name: str, *, actor: str | None = None) -> None:
    """Remove an agent; refused (BadInput, nothing changed) while it holds work."""
    async with conn.transaction():
        current = await _lock(conn, name)
        work = await _work(conn, name)
        if work or current["current_task_id"] is not None:
            raise errors.BadInput(
                f"{_describe_work(name, work)}; cancel it, or wait until it is done "
                "(nothing changed)"
            )
        await conn.execute(query("set_actor"), {"actor": actor or ""})
        await conn.execute(query("delete_agent"), {"name": name})


@translated
async def overrides(conn: Conn, name: str) -> Overrides | None:
    """What the agent adds to its role (None when it is not registered)."""
    row = await (await conn.execute(query("agent_overrides"), {"name": name})).fetchone()
    if row is None:
        return None
    skills: list[dict[str, str]] = []
    if row["skills"]:
        rows = await (
            await conn.execute(query("known_skills"), {"names": list(row["skills"])})
        ).fetchall()
        skills = [{"name": r["name"], "description": r["description"]} for r in rows]
    return Overrides(
        role=row["role"],
        model=row["model_override"],
        instructions=row["instructions"],
        skills=skills,
    )


@translated
async def adopt(conn: Conn, session_id: uuid.UUID, role: str, *, limit: int = 64) -> list[str]:
    """The role's defined agents no live session hosts, now hosted by this session."""
    async with conn.transaction():
        rows = await (
            await conn.execute(
                query("adopt_agents"), {"session": session_id, "role": role, "limit": limit}
            )
        ).fetchall()
        names = [r["name"] for r in rows]
        if names:
            await activities.record(
                conn,
                "session.adopted",
                message=f"{role} session hosts {', '.join(names)}",
                data={"session": str(session_id), "agents": names},
                actor=names[0],
            )
    return names


@translated
async def still_hosted(conn: Conn, session_id: uuid.UUID, role: str, names: list[str]) -> list[str]:
    """Of `names`, the defined agents of `role` this session still hosts."""
    rows = await (
        await conn.execute(
            query("still_hosted"), {"session": session_id, "role": role, "names": names}
        )
    ).fetchall()
    return [r["name"] for r in rows]


@translated
async def release(conn: Conn, session_id: uuid.UUID, name: str) -> None:
    """This session no longer hosts the agent."""
    async with conn.transaction():
        await conn.execute(query("release_agent"), {"session": session_id, "name": name})


@translated
async def defined_roles(conn: Conn) -> list[str]:
    """Roles that defined agents have."""
    rows = await (await conn.execute(query("defined_roles"))).fetchall()
    return [r["role"] for r in rows]
