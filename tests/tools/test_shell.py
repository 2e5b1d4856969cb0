"""The shell tool with real subprocesses: exit codes, timeouts, output caps, no secrets.

The tool runs commands only in the bubblewrap sandbox: where none can run these tests
skip (tests/tools/test_sandbox.py shows the refusal).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest
from agentos.tools.base import ToolContext
from agentos.tools.sandbox import SandboxSettings, sandbox_status
from agentos.tools.shell import is_secret_name, safe_env

_STATUS = sandbox_status(SandboxSettings())
needs_sandbox = pytest.mark.skipif(not _STATUS.runs_commands, reason=_STATUS.describe())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@needs_sandbox
async def test_runs_in_the_worktree_and_reports_the_exit_code(ctx: ToolContext, call) -> None:
    r = await call(ctx, "run_command", {"command": "pwd; echo out; echo err >&2; exit 3"})
    assert r.ok
    first, *rest = r.output.splitlines()
    assert first.startswith("exit code 3 (")
    assert rest == [str(ctx.worktree.resolve()), "out", "err"]
    r = await call(ctx, "run_command", {"command": "true"})
    assert r.ok and r.output.endswith("(no output)")


@needs_sandbox
async def test_cwd_is_confined(ctx: ToolContext, call) -> None:
    (ctx.worktree / "sub").mkdir()
    r = await call(ctx, "run_command", {"command": "pwd", "cwd": "sub"})
    assert r.output.splitlines()[1].endswith("/wt/sub")
    r = await call(ctx, "run_command", {"command": "pwd", "cwd": ".."})
    assert not r.ok and "outside the worktree" in r.output


def _host_pids(marker: str) -> list[int]:
    """Pids of the host's processes whose command line contains marker (seen from outside)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # bwrap's own command line holds the whole command: only the sleep itself counts
        if cmdline.startswith("sleep ") and marker in cmdline and _alive(int(entry)):
            out.append(int(entry))
    return out


async def _gone(marker: str) -> bool:
    for _ in range(60):
        if not _host_pids(marker):
            return True
        await asyncio.sleep(0.05)
    return False


@needs_sandbox
async def test_timeout_kills_the_whole_process_group(ctx: ToolContext, call) -> None:
    start = time.monotonic()
    r = await call(
        ctx,
        "run_command",
        {"command": "sleep 61.011 & echo started; sleep 61.012", "timeout": 1},
    )
    elapsed = time.monotonic() - start
    assert not r.ok
    assert r.output.startswith("error: timed out after 1.")
    assert "process group was killed" in r.output and "started" in r.output
    assert elapsed < 5
    assert await _gone("61.01"), "the background child survived the timeout"


@needs_sandbox
async def test_cancelling_the_call_kills_the_command(ctx: ToolContext, call) -> None:
    # the agent stops (its task is cancelled) while a command hangs: the command dies too
    running = asyncio.create_task(call(ctx, "run_command", {"command": "sleep 3600.5"}))
    for _ in range(100):
        if _host_pids("3600.5"):
            break
        await asyncio.sleep(0.05)
    assert _host_pids("3600.5"), "the command never started"
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert await _gone("3600.5"), "sleep 3600 outlived the cancelled agent"


@needs_sandbox
async def test_background_processes_end_with_the_command(ctx: ToolContext, call) -> None:
    start = time.monotonic()
    r = await call(ctx, "run_command", {"command": "sleep 62.5 & echo done"})
    assert r.ok and "done" in r.output
    assert time.monotonic() - start < 5
    # even with its output redirected, a background process dies with the sandbox
    r = await call(ctx, "run_command", {"command": "sleep 62.6 > /dev/null 2>&1 & echo ok"})
    assert r.ok and "ok" in r.output
    assert await _gone("62."), "a background process outlived its command"


@needs_sandbox
async def test_output_is_capped_head_and_tail(ctx: ToolContext, call) -> None:
    ctx.output_cap = 3000
    script = "import sys\nfor i in range(200000): print('line', i)\n"
    (ctx.worktree / "spam.py").write_text(script)
    r = await call(ctx, "run_command", {"command": f"{sys.executable} spam.py"})
    assert r.ok
    assert len(r.output) < 3400
    assert "line 0\n" in r.output and "line 199999" in r.output
    assert "bytes of output cut" in r.output
    assert r.output.startswith("exit code 0")


@needs_sandbox
async def test_secrets_are_not_in_the_environment(
    ctx: ToolContext, call, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-openai")
    monkeypatch.setenv("AGENTOS_DATABASE_URL", "postgresql://u:pw@db/agentos")
    monkeypatch.setenv("AGENTOS_LLM_API_KEY", "fake-llm-key")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_fake")
    monkeypatch.setenv("PGPASSWORD", "fake-pg")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "fake-keyring")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    ctx.env = {"MY_FLAG": "on", "SERVICE_SECRET": "fake-service", "DEPLOY_PASSWORD": "x"}
    r = await call(ctx, "run_command", {"command": "env"})
    assert r.ok
    env = dict(line.split("=", 1) for line in r.output.splitlines()[1:] if "=" in line)
    for fake in ("sk-fake-openai", "u:pw@db", "fake-llm-key", "ghp_fake", "fake-pg",
                 "fake-keyring", "fake-service"):  # fmt: skip
        assert fake not in r.output
    for name in ("OPENAI_API_KEY", "AGENTOS_DATABASE_URL", "AGENTOS_LLM_API_KEY",
                 "GITHUB_TOKEN", "PGPASSWORD", "SERVICE_SECRET", "DEPLOY_PASSWORD"):  # fmt: skip
        assert name not in env
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["LC_ALL"] == "C.UTF-8"
    assert env["MY_FLAG"] == "on"
    assert env["PATH"]
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_AUTHOR_NAME"] == "worker-1"


def test_safe_env_is_an_allowlist() -> None:
    env = safe_env(base={"PATH": "/bin", "HOME": "/h", "RANDOM_THING": "x", "AWS_REGION": "eu"})
    assert env["PATH"] == "/bin" and env["HOME"] == "/h"
    assert "RANDOM_THING" not in env and "AWS_REGION" not in env
    assert safe_env(base={})["PATH"]  # a sane default when the process has none
    assert is_secret_name("aws_secret_access_key") and is_secret_name("Api_Key")
    assert not is_secret_name("PYTHONPATH")


async def test_a_command_that_cannot_start_is_an_error(ctx: ToolContext, tmp_path: Path) -> None:
    from agentos.tools.base import ToolError
    from agentos.tools.sandbox import run_process

    with pytest.raises(ToolError, match="cannot start"):
        await run_process(
            [str(tmp_path / "missing-binary")], cwd=ctx.worktree, env={}, timeout=5, cap=100
        )
