"""`agentos executor list`: every executor, its program (configured or on PATH), version."""

from __future__ import annotations

import json

from conftest import BINARIES, cli, cli_binary, write_role


def test_executor_list_finds_the_configured_cli_and_its_version(exec_env, home) -> None:  # type: ignore[no-untyped-def]
    write_role(home, "claude-code", binary=cli_binary("claude-code"))
    exec_env["PATH"] = "/usr/bin:/bin"
    r = cli(exec_env, "executor", "list", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["executor"]: row for row in json.loads(r.stdout)}
    assert list(rows) == ["builtin", "claude-code", "codex", "aider", "opencode", "gemini-cli",
                          "command"]  # fmt: skip
    claude = rows["claude-code"]
    assert claude["found"] and claude["binary"] == str(BINARIES["claude-code"])
    assert "Claude Code" in claude["version"] and claude["roles"] == ["worker"]
    assert "ANTHROPIC_API_KEY" in claude["needs"]
    assert not rows["codex"]["found"]  # not configured and not on this PATH
    text = cli(exec_env, "executor", "list")
    assert text.returncode == 0 and "claude-code" in text.stdout and "not found" in text.stdout
