"""agentos: the command line of AgentOS.

Noun-verb commands; exit 0 on success, 1 on failure, 2 on bad input, 3 when a named
thing does not exist, 4 on a lost lease, 5 when the database is unreachable.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import click
from agentos.cli.common import (
    CONTEXT,
    fail,
)


def _version() -> str:
    try:
        return version("agentos")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


@click.group(context_settings=CONTEXT)
@click.version_option(_version(), "-V", "--version", prog_name="agentos")
def cli() -> None:
    """AgentOS: a team of AI agents whose whole state lives in PostgreSQL.

    With no AGENTOS_DATABASE_URL an embedded PostgreSQL server runs under AGENTOS_HOME.
    """


from agentos.cli.agent import agent  # noqa: E402
from agentos.cli.bench import bench  # noqa: E402
from agentos.cli.channel import channel  # noqa: E402
from agentos.cli.dashboard import dashboard  # noqa: E402
from agentos.cli.db import db  # noqa: E402
from agentos.cli.executors import executor  # noqa: E402
from agentos.cli.lifecycle import start, status, stop  # noqa: E402
from agentos.cli.log import log_cmd  # noqa: E402
from agentos.cli.message import message  # noqa: E402
from agentos.cli.schedule import schedule  # noqa: E402
from agentos.cli.secret import secret  # noqa: E402
from agentos.cli.skill import skill  # noqa: E402
from agentos.cli.task import task  # noqa: E402
from agentos.cli.tools_cmd import doctor, tool  # noqa: E402
from agentos.cli.tui_cmd import tui  # noqa: E402

# One module per command group; a new group is one import and one line here.
for command in (start, stop, status, db, task, agent, log_cmd, message, skill, schedule, tui):
    cli.add_command(command)
for command in (bench, tool, doctor, executor, dashboard, channel, secret):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point: usage errors are one `error: ...` line too (exit 2)."""
    try:
        rv = cli.main(prog_name="agentos", standalone_mode=False)
    except _NO_ARGS_IS_HELP as exc:
        exc.show()  # `agentos task` alone prints the group's help, as click does
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        fail(_one_line(exc.format_message()) + hint, 2)
    except click.FileError as exc:
        fail(_one_line(exc.format_message()), 2)
    except click.ClickException as exc:
        fail(_one_line(exc.format_message()), exc.exit_code)
    except click.Abort:
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _one_line(message: str) -> str:
    return "; ".join(ln.strip() for ln in message.splitlines() if ln.strip()) or "bad usage"


if __name__ == "__main__":
    main()
