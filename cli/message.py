"""`agentos message`: talk to the team."""

from __future__ import annotations

import click
from agentos.cli.common import (
    CONTEXT,
    ID,
    echo_json,
    fail,
    handle_errors,
    read_text,
    with_conn,
)


@click.group(context_settings=CONTEXT)
def message() -> None:
    """Talk to the team."""


@message.command("send", context_settings=CONTEXT)
@click.argument("text")
@click.option("--to", "to_agent", default=None, help="An agent; it wakes and answers.")
@click.option("--task", "task_id", type=ID, default=None, help="A task's thread.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def message_send(text: str, to_agent: str | None, task_id: int | None, as_json: bool) -> None:
    """Send a message to an agent or onto a task's thread (TEXT - reads it from stdin)."""
    from agentos.kernel.messages import send_message

    if to_agent is None and task_id is None:
        fail("give --to AGENT or --task ID", 2)
    text = read_text(text, "the message")

    m = with_conn(
        lambda conn: send_message(
            conn,
            body=text,
            to_agent=to_agent,
            task_id=task_id,
            from_agent=None,
            kind="question" if to_agent else "comment",
        )
    )
    if as_json:
        echo_json(m)
    else:
        click.echo(f"sent message #{m.id}")
