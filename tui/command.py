"""`agentos tui`: the click command. Importing this module does not import Textual.

Register it with `cli.add_command(tui_command)`; `agentos --help` stays light because
Textual (and the App) are imported only when the command runs.
"""

from __future__ import annotations

import asyncio
import sys

import click

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


async def _prepare(settings: object) -> str:
    """Resolve the database (starting the embedded one), check it, apply migrations."""
    from agentos.kernel.db import Kernel

    kernel = Kernel(settings)  # type: ignore[arg-type]
    probe = await kernel.connect()  # fails at once when refused; the pool would wait 15 s
    await probe.close()
    await kernel.open(min_size=1, max_size=1)
    try:
        await kernel.ensure_schema()
        return kernel.url
    finally:
        await kernel.close()


@click.command("tui", context_settings=CONTEXT)
@click.option("--filter", "filter_text", default=None, help="Start with this filter (as `/`).")
@click.option(
    "--task", "task_id", type=click.IntRange(min=1), default=None, help="Open this task's screen."
)
@click.option(
    "--resync",
    type=click.FloatRange(5, 3600),
    default=30.0,
    show_default=True,
    envvar="AGENTOS_TUI_RESYNC",
    help="Seconds between safety re-reads (updates come from NOTIFY; this only bounds a lost one).",
)
@click.pass_context
def tui_command(
    ctx: click.Context, filter_text: str | None, task_id: int | None, resync: float
) -> None:
    """Mission control: agents, the board and the live activity feed, in the terminal.

    Keys: ? lists them all. n new task, enter open a task, y approve, x reject,
    c cancel, r retry, b raise a budget, m message, / filter, q quit.
    """
    from agentos.kernel.errors import KernelError
    from agentos.kernel.models import first_error
    from agentos.kernel.settings import Settings
    from pydantic import ValidationError

    try:
        settings = Settings()
    except ValidationError as exc:
        _fail(f"bad setting: {first_error(exc)}", 2)
        return
    # `agentos tui` hands down cli.common's line: stderr says when the embedded server
    # is about to start, as every other command does (decision 040)
    announce = (ctx.obj or {}).get("announce_embedded_start")
    if announce is not None:
        announce(settings)
    try:
        url = asyncio.run(_prepare(settings))
    except KernelError as exc:
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, exc.exit_code)
        return
    from agentos.tui.app import MissionControl

    app = MissionControl(
        settings, url=url, resync_interval=resync, initial_filter=filter_text, open_task=task_id
    )
    app.run()
