"""`agentos tui` as a click command, and the import hygiene it promises."""

from __future__ import annotations

import os
import subprocess
import sys

from agentos.tui.command import tui_command
from click.testing import CliRunner


def test_importing_the_command_does_not_import_textual() -> None:
    code = (
        "import sys\n"
        "from agentos.tui.command import tui_command\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'textual', 'litellm'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_the_service_and_models_do_not_import_textual() -> None:
    code = (
        "import sys\n"
        "import agentos.tui.service, agentos.tui.model, agentos.tui.fmt\n"
        "import agentos.tui.bridge, agentos.tui.refresh, agentos.tui.loaders, agentos.tui.actions\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(tui_command, ["--help"])
    assert result.exit_code == 0
    assert "Mission control" in result.output
    for option in ("--filter", "--task", "--resync"):
        assert option in result.output


def test_a_bad_setting_is_one_line_and_exit_2(tmp_path) -> None:
    env = {"AGENTOS_POLL_INTERVAL": "soon", "AGENTOS_HOME": str(tmp_path)}
    result = CliRunner().invoke(tui_command, [], env=env)
    assert result.exit_code == 2
    assert result.output.startswith("error: bad setting") and result.output.count("\n") == 1


def test_bad_options_exit_2() -> None:
    result = CliRunner().invoke(tui_command, ["--task", "0"])
    assert result.exit_code == 2


def test_an_unreachable_database_is_one_line_and_exit_5(tmp_path) -> None:
    env = {
        "AGENTOS_DATABASE_URL": "postgresql://agentos@127.0.0.1:9/nowhere?connect_timeout=2",
        "AGENTOS_HOME": str(tmp_path),
    }
    result = CliRunner().invoke(tui_command, [], env=env)
    assert result.exit_code == 5, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1


def _embedded_env(home) -> dict[str, str | None]:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("AGENTOS_")}
    env["AGENTOS_HOME"] = str(home)
    return env


def test_agentos_tui_says_when_it_starts_the_embedded_database(tmp_path) -> None:
    from agentos.cli.main import cli

    home = tmp_path / "home"
    home.mkdir()
    # a file where the data directory would be: the start is announced, then fails at
    # once, so no server is left running after the test
    (home / "pgdata").write_text("not a data directory")
    result = CliRunner().invoke(cli, ["tui"], env=_embedded_env(home))
    assert f"agentos: starting the embedded database at {home / 'pgdata'}" in result.stderr
    assert result.exit_code == 5, result.output
    assert result.stdout == ""


def test_agentos_tui_help_starts_nothing_and_says_nothing(tmp_path) -> None:
    from agentos.cli.main import cli

    result = CliRunner().invoke(cli, ["tui", "--help"], env=_embedded_env(tmp_path / "home"))
    assert result.exit_code == 0 and "Mission control" in result.stdout
    assert result.stderr == ""
    assert not (tmp_path / "home" / "pgdata").exists()
