"""`agentos message`: talk to the team, and read what it says back.

You write as a person: AGENTOS_USER, else your login name. An agent's answer comes back
to you, in the same thread (`message list`); `send --wait` prints it when it arrives.
Listing messages marks them read by you (`--peek` does not).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

import click
from agentos.cli.common import (
    CONTEXT,
    ID,
    echo_json,
    fail,
    handle_errors,
    open_kernel,
    read_text,
    run,
    safe,
    settings,
    to_jsonable,
)

KIND = click.Choice(["question", "comment", "status"])
WAIT_MAX = 3600.0
F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings=CONTEXT)
def message() -> None:
    """Talk to the team: send, list (conversations), show (a whole thread)."""


def where(m: Any) -> str:
    """Who or what a message went to, in words."""
    parts = []
    if m.to_agent:
        parts.append(m.to_agent)
    if m.channel_id is not None:
        parts.append(f"#{m.channel or m.channel_id}")
    elif m.task_id is not None:
        parts.append(f"task #{m.task_id}")
    if not parts:
        return "everyone"
    return " on ".join(parts)


def print_message(m: Any, *, marker: str = "") -> None:
    """A message as people read it: a header line, then its text indented."""
    re_ = f", re #{m.reply_to}" if m.reply_to else ""
    new = "  (new)" if m.read is False else ""
    click.echo(
        f"{marker}#{m.id} {m.created_at:%Y-%m-%d %H:%M:%S} {safe(m.from_agent or '-')} → "
        f"{safe(where(m))} [{m.kind}{re_}]{new}"
    )
    for line in safe(m.body, keep_newlines=True).splitlines() or [""]:
        click.echo(f"    {line}")


def _timeout(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not 0 < value <= WAIT_MAX:
        raise click.BadParameter(f"{value} is not between 0 and {WAIT_MAX:.0f} seconds")
    return value


def sending_options(*, wait_help: str) -> Callable[[F], F]:
    """--kind, --wait and --timeout, as `message send` and `channel post` take them."""
    options = [
        click.option("--kind", type=KIND, default="question", show_default=True),
        click.option("--wait", is_flag=True, help=wait_help),
        click.option(
            "--timeout",
            type=float,
            default=120.0,
            show_default=True,
            callback=_timeout,
            help="Seconds --wait waits at most.",
        ),
    ]

    def apply(fn: F) -> F:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return apply


async def send_and_wait(
    send: Any, *, wait: bool, timeout: float, reader: str
) -> tuple[Any, list[Any]]:
    """Send (send(conn) -> Message); with wait, then wait for an answer from each agent it
    woke (at least one), marking the answers read by the reader."""
    from agentos.kernel import messages

    kernel = await open_kernel()
    try:
        async with kernel.connection() as conn:
            sent = await send(conn)
        answers: list[Any] = []
        if wait:
            answers = await messages.wait_for_answers(
                kernel, sent.id, expect=max(1, len(sent.woken)), timeout=timeout
            )
            if answers:
                async with kernel.connection() as conn:
                    await messages.mark_read(conn, [a.id for a in answers], reader=reader)
        return sent, answers
    finally:
        await kernel.close()


def report_sent(
    sent: Any, answers: list[Any], *, wait: bool, timeout: float, as_json: bool
) -> None:
    """Print what was sent (and the answers); exit 1 when --wait timed out short."""
    expected = max(1, len(sent.woken))
    if as_json:
        echo_json({"message": sent, "answers": answers} if wait else sent)
    else:
        woke = f" (woke {', '.join(sent.woken)})" if sent.woken else ""
        click.echo(f"sent message #{sent.id} to {safe(where(sent))}{woke}")
        for a in answers:
            print_message(a)
    if wait and len(answers) < expected:
        got = f"{len(answers)} of {expected} answers" if answers else "no answer"
        fail(
            f"{got} within {timeout:g} s; message #{sent.id} is kept, and its answers will "
            "show in `agentos message list`",
            1,
        )


@message.command("send", context_settings=CONTEXT)
@click.argument("text")
@click.option("--to", "to_agent", default=None, help="An agent (it wakes and answers) or a person.")
@click.option(
    "--task", "task_id", type=ID, default=None, help="A task's thread (its holder answers)."
)
@click.option(
    "--reply-to", "reply_to", type=ID, default=None, help="Answer message ID (its thread)."
)
@sending_options(wait_help="Wait for the answer and print it.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def message_send(
    text: str,
    to_agent: str | None,
    task_id: int | None,
    reply_to: int | None,
    kind: str,
    wait: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Send a message to an agent or a person, onto a task's thread, or in reply to one
    (TEXT - reads it from stdin). It is from you: AGENTOS_USER, else your login name."""
    from agentos.kernel import messages

    if to_agent is None and task_id is None and reply_to is None:
        fail("give --to NAME, --task ID or --reply-to ID", 2)
    text = read_text(text, "the message")
    me = settings().person

    async def send(conn: Any) -> Any:
        to = to_agent
        if reply_to is not None and to is None:
            to = (await messages.get_message(conn, reply_to)).from_agent
            if to == me:
                to = None  # answering oneself: stay in the thread, address nobody
        return await messages.send_message(
            conn,
            body=text,
            to_agent=to,
            task_id=task_id,
            from_agent=me,
            kind=kind,
            reply_to=reply_to,
            as_person=True,
        )

    sent, answers = run(send_and_wait(send, wait=wait, timeout=timeout, reader=me))
    report_sent(sent, answers, wait=wait, timeout=timeout, as_json=as_json)


@message.command("list", context_settings=CONTEXT)
@click.option("--with", "with_name", default=None, help="Only what passed between you and NAME.")
@click.option("--task", "task_id", type=ID, default=None, help="Only this task's thread.")
@click.option("--channel", default=None, help="Only this channel (task-N: task N's thread).")
@click.option("--unread", is_flag=True, help="Only what you have not read.")
@click.option("--follow", "-f", is_flag=True, help="Then print new messages as they come (NOTIFY).")
@click.option("--limit", "-n", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--peek", is_flag=True, help="Do not mark what is shown as read.")
@click.option("--json", "as_json", is_flag=True, help="JSON (a list; JSON lines with --follow).")
@handle_errors
def message_list(
    with_name: str | None,
    task_id: int | None,
    channel: str | None,
    unread: bool,
    follow: bool,
    limit: int,
    peek: bool,
    as_json: bool,
) -> None:
    """Your conversations, oldest first: what came to you (addressed to you, broadcasts,
    your channels, mentions) and what you wrote; or one agent's, task's or channel's."""
    me = settings().person
    try:
        run(
            _list(
                me,
                with_name=with_name,
                task_id=task_id,
                channel=channel,
                unread=unread,
                follow=follow,
                limit=limit,
                peek=peek,
                as_json=as_json,
            )
        )
    except KeyboardInterrupt:
        pass


async def _list(
    me: str,
    *,
    with_name: str | None,
    task_id: int | None,
    channel: str | None,
    unread: bool,
    follow: bool,
    limit: int,
    peek: bool,
    as_json: bool,
) -> None:
    from agentos.kernel import bus, messages

    kernel = await open_kernel()

    async def read(after: int, n: int) -> list[Any]:
        async with kernel.connection() as conn:
            found = await messages.conversation(
                conn,
                reader=me,
                with_name=with_name,
                task_id=task_id,
                channel=channel,
                unread_only=unread,
                after_id=after,
                limit=n,
            )
            if not peek:
                await messages.mark_read(conn, [m.id for m in found if not m.read], reader=me)
        return found

    def show(found: list[Any], *, lines: bool) -> None:
        if as_json:
            if lines:
                for m in found:
                    click.echo(json.dumps(to_jsonable(m), default=str))
            else:
                echo_json(found)
            return
        for m in found:
            print_message(m)

    try:
        listener = await bus.Listener(kernel.url, [bus.MESSAGE]).start() if follow else None
        first = await read(0, limit)
        show(first, lines=follow)
        if not first and not follow and not as_json:
            click.echo("no unread messages" if unread else "no messages")
        if listener is None:
            return
        # Ids are handed out at insert and seen at commit: re-read a window behind the
        # newest and skip what was shown (as `agentos log --follow` does).
        seen = {m.id for m in first}
        last = max(seen, default=0)
        try:
            while True:
                await listener.wait(kernel.settings.poll_interval)
                new = [m for m in await read(max(0, last - 500), 500) if m.id not in seen]
                show(new, lines=True)
                for m in new:
                    seen.add(m.id)
                    last = max(last, m.id)
                if len(seen) > 5000:
                    seen = {i for i in seen if i > last - 500}
        finally:
            await listener.stop()
    except asyncio.CancelledError:
        pass
    finally:
        await kernel.close()


@message.command("show", context_settings=CONTEXT)
@click.argument("message_id", type=ID)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def message_show(message_id: int, as_json: bool) -> None:
    """One message in full, in its thread (the whole text an activity line points to)."""
    from agentos.kernel import messages

    me = settings().person

    async def go() -> tuple[Any, list[Any]]:
        kernel = await open_kernel()
        try:
            async with kernel.connection() as conn:
                m = await messages.get_message(conn, message_id)
                thread = await messages.thread(conn, m.thread_id or m.id, reader=me)
                await messages.mark_read(conn, [message_id], reader=me)
            return m, thread
        finally:
            await kernel.close()

    m, thread = run(go())
    if as_json:
        echo_json({"message": m, "thread": thread})
        return
    for t in thread:
        print_message(t, marker="> " if t.id == m.id else "  ")
