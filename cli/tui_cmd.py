"""`agentos tui`: mission control in the terminal."""

from __future__ import annotations

import click
from agentos.cli.common import (
    CONTEXT,
)


@click.command(
    "tui", context_settings={**CONTEXT, "ignore_unknown_options": True}, add_help_option=False
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def tui(args: tuple[str, ...]) -> None:
    """Mission control: the team live in your terminal (`agentos tui --help`)."""
    # Imported here so that `agentos --help` never loads textual.
    from agentos.cli.common import announce_embedded_start
    from agentos.tui.command import tui_command

    # tui may not import cli: the one announcement (decision 040) is handed down
    tui_command.main(
        args=list(args),
        prog_name="agentos tui",
        standalone_mode=True,
        obj={"announce_embedded_start": announce_embedded_start},
    )
