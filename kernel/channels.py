"""Channels: named groups of agents and people that talk together.

A post in a channel is a message with its `channel_id` (kernel.messages): every member
sees it, and it wakes only the agents it @mentions that are members (and only then).
A task's thread is its channel, named `task-N`: open to everyone, answered by the
task's holder. Names of channels follow the rule of agents' names; `task-N` is reserved.
"""

from __future__ import annotations

from agentos.kernel import errors
from agentos.kernel.db import Conn, translated
from agentos.kernel.messages import (
    TASK_CHANNEL,
    addressee_kind,
    check_name,
    ensure_person,
    send_message,
)
from agentos.kernel.models import Channel, Message, one_line
from agentos.sql import query

MAX_MEMBERS = 200
MAX_DESCRIPTION = 500


@translated
async def create_channel(
    conn: Conn,
    name: str,
    *,
    members: list[str],
    created_by: str,
    description: str = "",
    as_person: bool = True,
) -> Channel:
    """Create a channel of agents and people; its creator is a member too."""
    check_name(name, "channel")
    if TASK_CHANNEL.match(name):
        raise errors.BadInput(f"{name} is the name of task {name[5:]}'s thread; pick another")
    try:
        description = one_line(description)
    except ValueError as exc:
        raise errors.BadInput(f"the description {exc}") from None
    if len(description) > MAX_DESCRIPTION:
        raise errors.BadInput(f"the description is longer than {MAX_DESCRIPTION} characters")
    wanted = list(dict.fromkeys([created_by, *members]))
    if len(wanted) > MAX_MEMBERS:
        raise errors.BadInput(f"a channel has at most {MAX_MEMBERS} members")
    async with conn.transaction():
        if as_person:
            await ensure_person(conn, created_by)
        for member in wanted:
            check_name(member, "member")
            if await addressee_kind(conn, member) is None:
                raise errors.BadInput(
                    f"no agent or person {member!r} (agents: `agentos agent list`; a person "
                    "is known once they have sent a message)"
                )
        if await (await conn.execute(query("channel_by_name"), {"name": name})).fetchone():
            raise errors.BadInput(f"channel {name!r} exists (see `agentos channel list`)")
        row = await (
            await conn.execute(
                query("insert_channel"),
                {"name": name, "description": description, "created_by": created_by},
            )
        ).fetchone()
        assert row is not None
        for member in wanted:
            await conn.execute(
                query("add_channel_member"), {"channel": row["id"], "member": member}
            )
    return await get_channel(conn, name)


@translated
async def get_channel(conn: Conn, name: str) -> Channel:
    """One channel with its members; NotFound when there is none."""
    row = await (await conn.execute(query("channel_by_name"), {"name": name})).fetchone()
    if row is None:
        raise errors.NotFound(f"no channel {name!r} (see `agentos channel list`)")
    return Channel.model_validate(row)


@translated
async def list_channels(conn: Conn, *, reader: str, limit: int = 500) -> list[Channel]:
    """Every channel: members, how many messages, the last one's time, the reader's unread."""
    rows = await (
        await conn.execute(query("list_channels"), {"me": reader, "limit": limit})
    ).fetchall()
    return [Channel.model_validate(r) for r in rows]


@translated
async def post(
    conn: Conn,
    channel: str,
    body: str,
    *,
    from_agent: str,
    as_person: bool = True,
    kind: str = "comment",
) -> Message:
    """Post in a channel (or `task-N`, a task's thread); wakes the members it @mentions."""
    if not TASK_CHANNEL.match(channel):
        check_name(channel, "channel")
    return await send_message(
        conn, body=body, channel=channel, from_agent=from_agent, kind=kind, as_person=as_person
    )
