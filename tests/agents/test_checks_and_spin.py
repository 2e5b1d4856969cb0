"""The reviewer's check (which command, what its outcome means) and a model that never
calls a tool, end to end through the runtime on a real database."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agentos.agents import checks
from agentos.agents.config import AgentSettings, load_role
from agentos.agents.runner import AgentRuntime
from agentos.agents.workspace import Workspace
from agentos.kernel import bus, tasks
from agentos.kernel.db import Kernel
from agentos.kernel.models import Task, TaskStatus
from agentos.kernel.runtime import AgentHost


def test_the_check_command_comes_from_the_setting_then_the_workspace_then_the_role() -> None:
    assert checks.choose(setting="make test", workspace="tox", role="pytest") == (
        "make test",
        "AGENTOS_CHECK_COMMAND",
    )
    assert checks.choose(setting=None, workspace="tox", role="pytest") == ("tox", ".agentos.yaml")
    assert checks.choose(setting=" ", workspace=None, role="pytest")[0] == "pytest"
    assert checks.choose(setting=None, workspace=None, role=None) == (None, "none configured")
    assert checks.workspace_check("check_command: make check\n") == "make check"
    assert checks.workspace_check("other: 1\n") is None
    assert checks.workspace_check(None) is None
    for bad in ("- a list\n", "check_command: 3\n", "check_command: [\n"):
        with pytest.raises(ValueError, match=r"\.agentos\.yaml"):
            checks.workspace_check(bad)
    assert checks.expand("{python} -m pytest -q").endswith(" -m pytest -q")
    assert sys.executable in checks.expand("{python} -m pytest")


def _run(command: str, cwd: Path) -> tuple[int, str]:
    p = subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize(
    "command,outcome",
    [
        ("true", "passed"),
        ("false", "failed"),
        (f"{sys.executable} -c 'raise SystemExit(1)'", "failed"),
        ("definitely-not-a-program-xyz --flag", "cannot_run"),
        (f"{sys.executable} -m no_such_module_xyz -q", "cannot_run"),
        ("./not-executable.sh", "cannot_run"),
        # a test that fails because *it* imports a missing module is a failing test
        (f"{sys.executable} -c 'import no_such_module_xyz'", "failed"),
    ],
)
def test_real_commands_are_classified(tmp_path: Path, command: str, outcome: str) -> None:
    (tmp_path / "not-executable.sh").write_text("#!/bin/sh\ntrue\n")
    code, out = _run(command, tmp_path)
    got, reason = checks.classify(command, code, out)
    assert got == outcome, (code, out, reason)
    if outcome == "cannot_run":
        assert reason


@pytest.fixture
def agent_settings(db_url: str, tmp_path: Path) -> AgentSettings:
    return AgentSettings(
        database_url=db_url,
        home=tmp_path / "home",
        demo=True,  # type: ignore[arg-type]
        poll_interval=0.5,
        lease_seconds=5,
        leader_ttl_seconds=3,
    )


async def _host(
    kernel: Kernel, settings: AgentSettings, role: str, name: str, ws: Workspace
) -> tuple[AgentHost, asyncio.Task[None]]:
    cfg = load_role(role, settings)
    rt = AgentRuntime(kernel, settings, cfg, ws)
    listener = bus.Listener(
        kernel.url, [bus.TASK, bus.work_channel(f"role:{role}"), bus.work_channel(f"agent:{name}")]
    )
    listener.subscribe(rt.on_notify)
    await listener.start()
    host = AgentHost(kernel, role=role, agents=[name], handler=rt.handle, listener=listener)
    runner = asyncio.create_task(host.run())
    await asyncio.wait_for(host.ready.wait(), 10)
    return host, runner


async def _wait_status(kernel: Kernel, tid: int, statuses: set[TaskStatus], timeout: float) -> Task:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        async with kernel.connection() as conn:
            t = await tasks.get_task(conn, tid)
        if t.status in statuses:
            return t
        assert loop.time() < end, f"task {tid} still {t.status}"
        await asyncio.sleep(0.2)


async def _submitted_task(kernel: Kernel, settings: AgentSettings, ws: Workspace) -> int:
    """A task the scripted worker has written, committed and handed to review."""
    async with kernel.connection() as conn:
        t = await tasks.create_task(conn, title="Write notes")
    host, runner = await _host(kernel, settings, "worker", "w-check", ws)
    try:
        await _wait_status(kernel, t.id, {TaskStatus.review}, 60)
    finally:
        host.stop()
        await runner
    return t.id


async def test_a_check_that_cannot_run_blocks_the_task_and_says_why(
    agent_settings: AgentSettings,
) -> None:
    s = agent_settings.model_copy(update={"check_command": "{python} -m no_such_checker -q"})
    kernel = await Kernel(s).open(min_size=1, max_size=8)
    try:
        ws = await Workspace(s.workspace_path, s.worktrees_path, kernel=kernel).ensure()
        tid = await _submitted_task(kernel, s, ws)
        host, runner = await _host(kernel, s, "reviewer", "r-check", ws)
        try:
            t = await _wait_status(kernel, tid, {TaskStatus.blocked, TaskStatus.done}, 60)
        finally:
            host.stop()
            await runner
        async with kernel.connection() as conn:
            rejections = (await tasks.get_task(conn, tid)).rejections
            # the work was never judged: a retry (once the check is fixed) reviews it again
            retried = await tasks.retry(conn, tid, actor="alice")
            acts = await (
                await conn.execute(
                    "SELECT message FROM agentos.activities WHERE task_id = %s", (tid,)
                )
            ).fetchall()
    finally:
        await kernel.close()
    assert t.status == TaskStatus.blocked and rejections == 0
    assert retried.status == TaskStatus.review
    assert "cannot run" in (t.error or "") and "no_such_checker" in (t.error or "")
    assert "AGENTOS_CHECK_COMMAND" in (t.error or "")
    assert any("cannot run" in a["message"] for a in acts)


def _commit_all(cwd: Path, message: str) -> None:
    subprocess.run(["git", "add", "-A"], cwd=cwd, check=True)
    subprocess.run(
        ["git", "-c", "user.name=a", "-c", "user.email=a@x", "commit", "-qm", message],
        cwd=cwd,
        check=True,
    )


async def test_the_workspace_check_comes_from_the_base_branch_not_the_worktree(
    agent_settings: AgentSettings,
) -> None:
    kernel = await Kernel(agent_settings).open(min_size=1, max_size=8)
    try:
        ws = await Workspace(
            agent_settings.workspace_path, agent_settings.worktrees_path, kernel=kernel
        ).ensure()
        repo = agent_settings.workspace_path
        (repo / ".agentos.yaml").write_text("check_command: exit 3\n")
        _commit_all(repo, "check")
        cfg = load_role("reviewer", agent_settings)
        rt = AgentRuntime(kernel, agent_settings, cfg, ws)
        assert await rt.check_command() == ("exit 3", ".agentos.yaml")
        wt = await ws.worktree(5)
        (wt / ".agentos.yaml").write_text("check_command: 'true'\n")  # a worker's wish
        _commit_all(wt, "x")
        assert (await rt.check_command())[0] == "exit 3"
        result = await rt._run_check(wt)
        assert result.outcome == "failed" and result.exit_code == 3
    finally:
        await kernel.close()


async def test_a_model_that_never_calls_a_tool_is_nudged_once_then_blocked(
    db_url: str, tmp_path: Path, fake_openai: Any
) -> None:
    server = fake_openai("I will plan this goal.", usage=(10, 5))
    s = AgentSettings(
        database_url=db_url,
        home=tmp_path / "h",
        model="openai/local-model",  # type: ignore[arg-type]
        llm_base_url=server.url,
        llm_api_key="sk-local",  # type: ignore[arg-type]
        poll_interval=0.5,
        lease_seconds=5,
    )
    kernel = await Kernel(s).open(min_size=1, max_size=8)
    try:
        ws = await Workspace(s.workspace_path, s.worktrees_path, kernel=kernel).ensure()
        async with kernel.connection() as conn:
            t = await tasks.create_task(conn, title="A goal", role="orchestrator")
        host, runner = await _host(kernel, s, "orchestrator", "o-spin", ws)
        try:
            got = await _wait_status(kernel, t.id, {TaskStatus.blocked, TaskStatus.failed}, 60)
        finally:
            host.stop()
            await runner
        async with kernel.connection() as conn:
            n = await (
                await conn.execute(
                    "SELECT count(*) AS c FROM agentos.llm_calls WHERE task_id = %s", (t.id,)
                )
            ).fetchone()
    finally:
        await kernel.close()
    assert got.status == TaskStatus.blocked
    assert "without calling a tool" in (got.error or "")
    assert "I will plan this goal." in (got.error or "")
    assert n is not None and n["c"] == 2  # the first reply and one after the reminder
