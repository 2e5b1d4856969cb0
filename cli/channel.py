"""`agentos channel`: named groups of agents and people.

A post in a channel wakes only the member agents it @mentions (`@worker-1`); every
member sees it (`agentos message list --channel NAME`). A task's thread is its channel,
`task-N`: `agentos channel post task-7 "..."` writes on task 7's thread, answered by its
holder.
"""

from __future__ import annotations

from typing import Any

import click
from agentos.cli.common import (
    CONTEXT,
    echo_json,
    handle_errors,
    read_text,
    run,
    safe,
    settings,
    with_conn,
)
from agentos.cli.message import report_sent, send_and_wait, sending_options


@click.group(context_settings=CONTEXT)
def channel() -> None:
    """Channels of agents and people: create, list, post (@name wakes a member)."""


def _members(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    names = [n.strip() for n in (value or "").split(",") if n.strip()]
    if not names:
        raise click.BadParameter("name at least one member: --members worker-1,alice")
    return names


@channel.command("create", context_settings=CONTEXT)
@click.argument("name")
@click.option(
    "--members",
    required=True,
    callback=_members,
    help="Agents and people, comma-separated (you are a member too).",
)
@click.option("--description", "-d", default="", help="What the channel is for (one line).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def channel_create(name: str, members: list[str], description: str, as_json: bool) -> None:
    """Create a channel of agents and people (you are a member too).

    For example `agentos channel create ops --members worker-1,reviewer`.
    """
    from agentos.kernel import channels

    me = settings().person
    ch = with_conn(
        lambda conn: channels.create_channel(
            conn, name, members=members, created_by=me, description=description
        )
    )
    if as_json:
        echo_json(ch)
    else:
        click.echo(f"channel {ch.name}: {', '.join(ch.members)}")


@channel.command("list", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list).")
@handle_errors
def channel_list(as_json: bool) -> None:
    """Channels: members, messages, your unread. (A task's thread is channel task-N.)"""
    from agentos.kernel import channels

    me = settings().person
    rows = with_conn(lambda conn: channels.list_channels(conn, reader=me))
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no channels (`agentos channel create NAME --members a,b`)")
    for ch in rows:
        last = f", last {ch.last_message_at:%Y-%m-%d %H:%M}" if ch.last_message_at else ""
        unread = f", {ch.unread} unread" if ch.unread else ""
        desc = f"  {safe(ch.description)}" if ch.description else ""
        click.echo(
            f"{safe(ch.name):<20} {ch.messages} messages{unread}{last}; "
            f"members {', '.join(ch.members)}{desc}"
        )


@channel.command("post", context_settings=CONTEXT)
@click.argument("name")
@click.argument("text")
@sending_options(wait_help="Wait for the answer of each agent it woke.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def channel_post(
    name: str, text: str, kind: str, wait: bool, timeout: float, as_json: bool
) -> None:
    """Post TEXT in channel NAME (or task-N); @name wakes that member (TEXT - reads stdin)."""
    from agentos.kernel import channels

    text = read_text(text, "the message")
    me = settings().person

    async def send(conn: Any) -> Any:
        return await channels.post(conn, name, text, from_agent=me, kind=kind)

    sent, answers = run(send_and_wait(send, wait=wait, timeout=timeout, reader=me))
    report_sent(sent, answers, wait=wait, timeout=timeout, as_json=as_json)
