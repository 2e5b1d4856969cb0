"""`agentos log`: the activity log."""

from __future__ import annotations

import click
from agentos.cli.common import (
    CONTEXT,
    ID,
    handle_errors,
    run,
)


@click.command("log", context_settings=CONTEXT)
@click.option("--follow", "-f", is_flag=True, help="Stream new activity as it happens (NOTIFY).")
@click.option("--agent", "actor", default=None, help="Only this agent (or actor).")
@click.option("--task", "task_id", type=ID, default=None, help="Only this task.")
@click.option("--limit", "-n", type=click.IntRange(1, 100000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@click.option("--full", is_flag=True, help="A message's whole text under its line.")
@handle_errors
def log_cmd(
    follow: bool, actor: str | None, task_id: int | None, limit: int, as_json: bool, full: bool
) -> None:
    """The activity log (the audit trail of everything)."""
    from agentos.cli.logview import show_log

    try:
        run(
            show_log(
                follow=follow,
                actor=actor,
                task_id=task_id,
                limit=limit,
                as_json=as_json,
                full=full,
            )
        )
    except KeyboardInterrupt:
        pass
