"""Skills: markdown documents in one global library that agents list and read.

A skill is a name (the same shape as an agent name), a one-line description shown in
listings, and a body. Adding a skill that exists is an error unless the caller asks to
replace it, so two people (or agents) do not overwrite each other's text by accident.
"""

from __future__ import annotations

import datetime as dt

from agentos.kernel import errors, redact
from agentos.kernel.db import Conn, translated
from agentos.kernel.models import NAME_RE
from pydantic import BaseModel, ConfigDict

MAX_BODY = 200_000
MAX_DESCRIPTION = 500

_INSERT = """
INSERT INTO agentos.skills (name, description, body)
VALUES (%(name)s, %(description)s, %(body)s)
ON CONFLICT (name) DO NOTHING
RETURNING *
"""

_REPLACE = """
INSERT INTO agentos.skills (name, description, body)
VALUES (%(name)s, %(description)s, %(body)s)
ON CONFLICT (name) DO UPDATE
SET description = excluded.description, body = excluded.body, updated_at = now()
RETURNING *
"""

_LIST = "SELECT * FROM agentos.skills ORDER BY name"
_GET = "SELECT * FROM agentos.skills WHERE name = %(name)s"
_DELETE = "DELETE FROM agentos.skills WHERE name = %(name)s RETURNING name"


class Skill(BaseModel):
    """A skill row."""

    model_config = ConfigDict(extra="ignore")

    name: str
    description: str
    body: str
    created_at: dt.datetime
    updated_at: dt.datetime


def _check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise errors.BadInput(
            f"bad skill name {name!r} (lowercase letters, digits, . _ -; at most 63)"
        )
    return name


@translated
async def add_skill(
    conn: Conn, name: str, body: str, description: str = "", *, replace: bool = False
) -> Skill:
    """Store a skill; BadInput when it exists, unless `replace`."""
    _check_name(name)
    body, description = redact.redact_text(body), redact.redact_text(description)
    if not body.strip():
        raise errors.BadInput("a skill needs a body")
    if len(body) > MAX_BODY:
        raise errors.BadInput(f"skill body is {len(body)} characters; the limit is {MAX_BODY}")
    description = " ".join(description.split())
    if len(description) > MAX_DESCRIPTION:
        raise errors.BadInput(f"skill description is longer than {MAX_DESCRIPTION} characters")
    row = await (
        await conn.execute(
            _REPLACE if replace else _INSERT,
            {"name": name, "description": description, "body": body},
        )
    ).fetchone()
    if row is None:
        raise errors.BadInput(f"skill {name!r} exists (replace it explicitly)")
    return Skill.model_validate(row)


@translated
async def list_skills(conn: Conn) -> list[Skill]:
    """Every skill, by name."""
    rows = await (await conn.execute(_LIST)).fetchall()
    return [Skill.model_validate(r) for r in rows]


@translated
async def get_skill(conn: Conn, name: str) -> Skill:
    """One skill; NotFound when there is none by that name."""
    row = await (await conn.execute(_GET, {"name": name})).fetchone()
    if row is None:
        raise errors.NotFound(f"no skill {name!r}")
    return Skill.model_validate(row)


@translated
async def remove_skill(conn: Conn, name: str) -> None:
    """Delete a skill; NotFound when there is none by that name."""
    row = await (await conn.execute(_DELETE, {"name": name})).fetchone()
    if row is None:
        raise errors.NotFound(f"no skill {name!r}")
