"""The agent runtime in-process against a real database: budgets, cancel, messages,
role configuration, prompts, and a local OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jinja2
import pytest
from agentos.agents.config import AgentSettings, load_role
from agentos.agents.llm import LLMClient
from agentos.agents.loop import render
from agentos.agents.runner import AgentRuntime
from agentos.agents.workspace import Workspace
from agentos.kernel import errors, tasks
from agentos.kernel.db import Kernel
from agentos.kernel.messages import send_message
from agentos.kernel.models import TaskStatus
from agentos.kernel.runtime import AgentHost
from agentos.kernel.usage import BudgetExceeded, agent_day_scope, raise_task_budget, reserve


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


@pytest.fixture
async def akernel(agent_settings: AgentSettings) -> Any:
    k = await Kernel(agent_settings).open(min_size=1, max_size=10)
    yield k
    await k.close()


async def _run_role(
    kernel: Kernel, settings: AgentSettings, role: str, names: list[str]
) -> tuple[AgentHost, asyncio.Task[None]]:
    cfg = load_role(role, settings)
    ws = await Workspace(settings.workspace_path, settings.worktrees_path).ensure()
    rt = AgentRuntime(kernel, settings, cfg, ws)
    from agentos.kernel import bus

    work_channels = [
        bus.work_channel(f"role:{role}"),
        *(bus.work_channel(f"agent:{n}") for n in names),
    ]
    listener = bus.Listener(kernel.url, [bus.TASK, *work_channels])
    listener.subscribe(rt.on_notify)
    await listener.start()
    host = AgentHost(kernel, role=role, agents=names, handler=rt.handle, listener=listener)
    runner = asyncio.create_task(host.run())
    await asyncio.wait_for(host.ready.wait(), 10)
    return host, runner


async def _until(cond: Any, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await cond():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.1)


async def _status(kernel: Kernel, tid: int) -> TaskStatus:
    async with kernel.connection() as conn:
        return (await tasks.get_task(conn, tid)).status


async def test_a_budget_breach_blocks_the_task_and_retry_with_budget_resumes(
    akernel: Kernel, agent_settings: AgentSettings
) -> None:
    async with akernel.connection() as conn:
        t = await tasks.create_task(conn, title="Expensive notes")
        await conn.execute("UPDATE agentos.tasks SET budget_usd = 0.00001 WHERE id = %s", (t.id,))
    host, runner = await _run_role(akernel, agent_settings, "worker", ["w-budget"])
    try:

        async def blocked() -> bool:
            return await _status(akernel, t.id) == TaskStatus.blocked

        await _until(blocked)
        async with akernel.connection() as conn:
            got = await tasks.get_task(conn, t.id)
            calls = await (
                await conn.execute(
                    "SELECT outcome FROM agentos.llm_calls WHERE task_id = %s", (t.id,)
                )
            ).fetchall()
        assert "budget exhausted: task:" in (got.error or "")
        assert [c["outcome"] for c in calls] == ["budget"]
        async with akernel.connection() as conn:
            await raise_task_budget(conn, t.id, 5.0)
            await tasks.retry(conn, t.id, actor="human")

        async def in_review() -> bool:
            return await _status(akernel, t.id) == TaskStatus.review

        await _until(in_review, timeout=60)
    finally:
        host.stop()
        await runner


async def test_concurrent_reservations_cannot_overshoot_together(akernel: Kernel) -> None:
    scope = [(agent_day_scope("racer"), 1.0)]

    async def one() -> bool:
        async with akernel.connection() as conn:
            try:
                await reserve(conn, scope, 0.3)
                return True
            except BudgetExceeded:
                return False

    granted = await asyncio.gather(*(one() for _ in range(10)))
    assert sum(granted) == 3


async def test_cancel_stops_the_agent_between_steps(
    akernel: Kernel, agent_settings: AgentSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTOS_SCRIPTED_DELAY", "2")
    async with akernel.connection() as conn:
        t = await tasks.create_task(conn, title="Cancel me")
    host, runner = await _run_role(akernel, agent_settings, "worker", ["w-cancel"])
    try:

        async def tested() -> bool:
            async with akernel.connection() as conn:
                row = await (
                    await conn.execute(
                        "SELECT count(*) AS c FROM agentos.steps WHERE task_id = %s AND tool_name = "
                        "'run_command' AND kind = 'tool_result'",
                        (t.id,),
                    )
                ).fetchone()
            return bool(row and row["c"])

        await _until(tested)
        async with akernel.connection() as conn:
            await tasks.cancel(conn, t.id, actor="human")
        await asyncio.sleep(3)  # the pending model call returns; nothing may follow it
        async with akernel.connection() as conn:
            after = await (
                await conn.execute(
                    "SELECT kind, tool_name FROM agentos.steps WHERE task_id = %s ORDER BY seq",
                    (t.id,),
                )
            ).fetchall()
            agent = await (
                await conn.execute(
                    "SELECT status, current_task_id FROM agentos.agents WHERE name = 'w-cancel'"
                )
            ).fetchone()
        assert await _status(akernel, t.id) == TaskStatus.cancelled
        assert not any(r["tool_name"] == "git_commit" for r in after)
        assert agent is not None and agent["current_task_id"] is None
    finally:
        host.stop()
        await runner


async def test_an_addressed_agent_wakes_and_answers(
    akernel: Kernel, agent_settings: AgentSettings
) -> None:
    host, runner = await _run_role(akernel, agent_settings, "reviewer", ["r-mail"])
    try:
        async with akernel.connection() as conn:
            sent = await send_message(
                conn, body="Are you there?", to_agent="r-mail", kind="question"
            )

        async def answered() -> bool:
            async with akernel.connection() as conn:
                row = await (
                    await conn.execute(
                        "SELECT count(*) AS c FROM agentos.messages WHERE from_agent = 'r-mail' "
                        "AND kind = 'answer'"
                    )
                ).fetchone()
            return bool(row and row["c"])

        await _until(answered)
        async with akernel.connection() as conn:
            read = await (
                await conn.execute("SELECT read_at FROM agentos.messages WHERE id = %s", (sent.id,))
            ).fetchone()
        assert read is not None and read["read_at"] is not None
    finally:
        host.stop()
        await runner


async def test_an_idle_team_makes_no_llm_calls(
    akernel: Kernel, agent_settings: AgentSettings
) -> None:
    from agentos.kernel import schedules

    hosts = [
        await _run_role(akernel, agent_settings, r, [f"{r}-idle"])
        for r in ("orchestrator", "worker", "reviewer")
    ]
    try:
        async with akernel.connection() as conn:
            for r in ("orchestrator", "worker", "reviewer"):
                cfg = load_role(r, agent_settings)
                assert cfg.heartbeat is not None
                await conn.execute(
                    "UPDATE agentos.schedules SET next_fire_at = now() - interval '1 minute' "
                    "WHERE name = %s",
                    (f"{r}-heartbeat",),
                )
        fired = await schedules.fire_due(akernel)
        assert sorted(fired) == [] or all(not f for _, f in fired)
        await asyncio.sleep(1.5)
        async with akernel.connection() as conn:
            row = await (
                await conn.execute("SELECT count(*) AS c FROM agentos.llm_calls")
            ).fetchone()
        assert row is not None and row["c"] == 0
    finally:
        for host, runner in hosts:
            host.stop()
            await runner


def test_role_config_overrides_and_model_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roles = tmp_path / "roles"
    roles.mkdir()
    (roles / "worker.yaml").write_text("temperature: 0.7\nlimits: {max_iterations: 5}\n")
    (roles / "tester.yaml").write_text(
        "name: tester\nmodel: openai/gpt-4o-mini\ntools: [read_file]\n"
        "prompts: {system: worker_system.j2, task: worker_task.j2}\n"
    )
    s = AgentSettings(home=tmp_path / "h", roles_dir=roles)
    w = load_role("worker", s)
    assert w.temperature == 0.7 and w.limits.max_iterations == 5 and w.model == "openai/gpt-4o-mini"
    assert load_role("tester", s).tools == ["read_file"]
    monkeypatch.setenv("AGENTOS_MODEL", "ollama/qwen2.5-coder")
    assert load_role("reviewer", AgentSettings(home=tmp_path / "h")).model == "ollama/qwen2.5-coder"
    with pytest.raises(errors.BadInput, match="unknown role 'nope'"):
        load_role("nope", s)
    (roles / "bad.yaml").write_text(
        "name: bad\nmodel: x\nprompts: {system: a, task: b}\nsurprise: 1\n"
    )
    with pytest.raises(errors.BadInput, match="surprise"):
        load_role("bad", s)


def test_prompts_fail_on_missing_variables() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render("worker_system.j2", [], agent="w")
    text = render("worker_system.j2", [], agent="w", branch="agentos/task-1", memory="")
    assert "agentos/task-1" in text


async def test_calls_reach_a_local_openai_compatible_server(
    db_url: str, tmp_path: Path, fake_openai: Any
) -> None:
    server = fake_openai("pong")
    s = AgentSettings(
        database_url=db_url,
        home=tmp_path / "h",
        model="openai/local-model",  # type: ignore[arg-type]
        llm_base_url=server.url,
        llm_api_key="sk-local-test",
    )  # type: ignore[arg-type]
    kernel = await Kernel(s).open(min_size=1, max_size=2)
    try:
        role = load_role("worker", s)
        res = await LLMClient(kernel, s).chat(
            agent="w-local",
            role=role,
            task_id=None,
            messages=[{"role": "user", "content": "ping"}],
            tools=[],
        )
        async with kernel.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT model, prompt_tokens, completion_tokens, outcome FROM agentos.llm_calls"
                )
            ).fetchone()
    finally:
        await kernel.close()
    assert res.content == "pong"
    assert row == {
        "model": "openai/local-model",
        "prompt_tokens": 7,
        "completion_tokens": 1,
        "outcome": "ok",
    }
    req = server.seen[-1]
    assert req["path"] == "/v1/chat/completions" and req["model"] == "local-model"
    assert req["auth"] == "Bearer sk-local-test"


class _Broken(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(400)
        data = b'{"error": {"message": "model is broken", "type": "invalid_request_error"}}'
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


async def test_a_failing_model_falls_back_and_both_calls_are_recorded(
    db_url: str, tmp_path: Path
) -> None:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Broken)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        s = AgentSettings(
            database_url=db_url,
            home=tmp_path / "h",  # type: ignore[arg-type]
            llm_base_url=f"http://127.0.0.1:{srv.server_address[1]}/v1",
            llm_api_key="sk-x",
        )  # type: ignore[arg-type]
        kernel = await Kernel(s).open(min_size=1, max_size=2)
        try:
            role = load_role("worker", s).model_copy(
                update={"model": "openai/broken", "fallbacks": ["agentos/scripted"]}
            )
            res = await LLMClient(kernel, s).chat(
                agent="w-fb",
                role=role,
                task_id=None,
                tools=[],
                messages=[
                    {"role": "system", "content": "You are w-fb, a worker"},
                    {"role": "user", "content": "Task #1: x"},
                ],
            )
            async with kernel.connection() as conn:
                rows = await (
                    await conn.execute("SELECT model, outcome FROM agentos.llm_calls ORDER BY id")
                ).fetchall()
        finally:
            await kernel.close()
    finally:
        srv.shutdown()
    assert res.model == "agentos/scripted" and res.tool_calls
    assert [(r["model"], r["outcome"]) for r in rows] == [
        ("openai/broken", "error"),
        ("agentos/scripted", "ok"),
    ]


def test_the_repeat_detector_counts_identical_consecutive_calls() -> None:
    import datetime as dt

    from agentos.agents.loop import Loop
    from agentos.kernel.steps import Step

    def call(i: int, name: str, args: dict[str, Any]) -> Step:
        return Step(
            id=i,
            task_id=1,
            stage="work",
            seq=i,
            agent="a",
            attempt=1,
            kind="tool_call",
            tool_name=name,
            tool_call_id=f"c{i}",
            content={"arguments": args},
            created_at=dt.datetime.now(dt.UTC),
        )

    loop = Loop.__new__(Loop)
    loop.rows = [call(0, "read_file", {"path": "a"})] + [
        call(i, "run_command", {"command": "ls"}) for i in range(1, 5)
    ]
    assert loop._repeats() == 4
    loop.rows.append(call(5, "run_command", {"command": "ls -la"}))
    assert loop._repeats() == 1


async def test_an_unreachable_model_blocks_the_task_with_the_reason(
    db_url: str, tmp_path: Path
) -> None:
    s = AgentSettings(
        database_url=db_url,
        home=tmp_path / "h",
        model="openai/gpt-4o-mini",  # type: ignore[arg-type]
        llm_base_url="http://127.0.0.1:9/v1",
        llm_api_key="sk-none",  # type: ignore[arg-type]
        poll_interval=0.5,
        lease_seconds=5,
    )
    kernel = await Kernel(s).open(min_size=1, max_size=6)
    try:
        async with kernel.connection() as conn:
            t = await tasks.create_task(conn, title="No model")
        host, runner = await _run_role(kernel, s, "worker", ["w-nomodel"])
        try:

            async def blocked() -> bool:
                return await _status(kernel, t.id) == TaskStatus.blocked

            await _until(blocked, timeout=90)
        finally:
            host.stop()
            await runner
        async with kernel.connection() as conn:
            got = await tasks.get_task(conn, t.id)
            n = await (await conn.execute("SELECT count(*) AS c FROM agentos.llm_calls")).fetchone()
    finally:
        await kernel.close()
    assert (got.error or "").startswith("LLM unavailable")
    assert n is not None and n["c"] == 1  # one failed call recorded, no retry storm


async def test_processes_sharing_a_workspace_create_it_once(
    akernel: Kernel, tmp_path: Path
) -> None:
    """Four agent processes start at once on one AGENTOS_HOME (agentos start does this)."""
    repo, trees = tmp_path / "ws", tmp_path / "trees"
    spaces = [Workspace(repo, trees, kernel=akernel) for _ in range(4)]
    await asyncio.gather(*(w.ensure() for w in spaces))
    paths = await asyncio.gather(*(w.worktree(i + 1) for i, w in enumerate(spaces)))
    assert all((p / ".git").exists() for p in paths)
    from agentos.agents.workspace import git

    log = (await git(repo, "log", "--oneline")).output
    assert len(log.strip().splitlines()) == 1  # one initial commit: created once
