"""How a step of the agent loop is written: the model's reply, its progress note and its
first tool call in the transaction that accounts for the call; each next call's row with
the result before it; the call's cost kept when the lease is lost under the reply.

In this process, on the test's database, with the scripted model (a litellm provider)
driving a real worker stage in a real git workspace.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from agentos.agents.config import AgentSettings, load_role
from agentos.agents.llm import ensure_litellm
from agentos.agents.runner import AgentRuntime
from agentos.agents.workspace import Workspace
from agentos.kernel import errors, sessions, steps, tasks
from agentos.kernel.db import Kernel
from agentos.kernel.dispatch import Dispatcher
from agentos.kernel.runtime import Work
from psycopg.rows import dict_row

AGENT = "steps-worker"


async def _claimed(s: AgentSettings, title: str, description: str = "") -> Any:
    setup = await Kernel(s).open(min_size=1, max_size=2)
    try:
        async with setup.connection() as conn:
            sid = await sessions.register_session(conn, role="worker", agents=[AGENT])
            await tasks.create_task(conn, title=title, description=description, created_by="t")
        d = await Dispatcher(setup, role="worker", session_id=sid).open()
        try:
            claimed = await d.claim([AGENT])
        finally:
            await d.close()
    finally:
        await setup.close()
    ((_, task),) = claimed.tasks
    return task


async def _run_stage(s: AgentSettings, task: Any, during: Any = None) -> tuple[Kernel, Any]:
    await asyncio.to_thread(ensure_litellm)
    kernel = await Kernel(s).open(min_size=1, max_size=4)
    workspace = await Workspace(
        s.workspace_path, s.worktrees_path, None, kernel=kernel, base_branch=None
    ).ensure()
    runtime = AgentRuntime(kernel, s, load_role("worker", s), workspace)
    run = asyncio.create_task(runtime.handle_task(Work(agent=AGENT, task=task)))
    if during is not None:
        await during()
    try:
        result: Any = await asyncio.wait_for(run, timeout=120)
    except errors.StaleLease as exc:
        result = exc
    return kernel, result


def _settings(db_url: str, tmp_path: Path) -> AgentSettings:
    return AgentSettings(
        database_url=db_url,  # type: ignore[arg-type]
        home=tmp_path / "home",
        demo=True,  # the scripted model
        lease_seconds=3600,
    )


async def test_a_reply_with_two_calls_is_written_in_order_in_three_commits_per_call(
    db_url: str, tmp_path: Path
) -> None:
    s = _settings(db_url, tmp_path)
    marker = (
        '[call write_file {"path": "a.txt", "content": "a"}] '
        '[call write_file {"path": "b.txt", "content": "b"}]'
    )
    task = await _claimed(s, "two calls in one reply", description=marker)
    kernel, _ = await _run_stage(s, task)
    try:
        async with kernel.connection() as conn:
            rows = await steps.load(conn, task.id, "work")
            after = await tasks.get_task(conn, task.id)
            cur = await conn.execute(
                "SELECT message, data FROM agentos.activities "
                "WHERE task_id = %s AND kind = 'agent.step' ORDER BY id",
                (task.id,),
            )
            notes = await cur.fetchall()
            cur = await conn.execute(
                "SELECT count(*) AS n FROM agentos.llm_calls WHERE task_id = %s AND outcome = 'ok'",
                (task.id,),
            )
            calls = (await cur.fetchone())["n"]  # type: ignore[index]
    finally:
        await kernel.close()
    assert str(after.status) == "review"
    kinds = [(r.kind, r.tool_name) for r in rows]
    # the reply, then each call's row right before its result: the order of the calls
    assert kinds[:7] == [
        ("system", None),
        ("user", None),
        ("llm", None),
        ("tool_call", "write_file"),
        ("tool_result", "write_file"),
        ("tool_call", "write_file"),
        ("tool_result", "write_file"),
    ]
    first, second = rows[3], rows[5]
    assert first.content["arguments"]["path"] == "a.txt"
    assert second.content["arguments"]["path"] == "b.txt"
    assert [r.seq for r in rows] == list(range(len(rows)))
    # every call id that has a row has exactly one (none written twice)
    ids = [r.tool_call_id for r in rows if r.kind == "tool_call"]
    assert len(ids) == len(set(ids))
    assert all(r.tool_call_id in ids for r in rows if r.kind == "tool_result")
    # one progress note per reply, pointing at the reply's own row
    llm_seqs = [r.seq for r in rows if r.kind == "llm"]
    assert len(notes) == len(llm_seqs) == calls
    assert [n["data"]["seq"] for n in notes] == llm_seqs
    assert notes[0]["message"].startswith("write_file(a.txt), write_file(b.txt)")


async def test_a_step_of_one_call_is_three_transactions(db_url: str, tmp_path: Path) -> None:
    s = _settings(db_url, tmp_path)
    task = await _claimed(s, "[steps=12] write files")
    kernel, _ = await _run_stage(s, task)
    try:
        async with kernel.connection() as conn:
            rows = await steps.load(conn, task.id, "work")
            cur = await conn.execute(
                "SELECT count(*) AS n FROM agentos.llm_calls WHERE task_id = %s", (task.id,)
            )
            turns = (await cur.fetchone())["n"]  # type: ignore[index]
        transactions = kernel.db_transactions - 1  # the look-up just above
    finally:
        await kernel.close()
    assert turns == 14  # 12 files, the commit, the submission
    # per turn: the reservation, the reply (with its note and call), the result; the
    # stage's own set-up and ending add a handful (loading, the prompts, the review)
    assert [r.kind for r in rows].count("tool_call") == turns
    assert transactions <= 3 * turns + 12, (transactions, turns)
    assert transactions < 4 * turns


async def test_a_lease_lost_under_the_reply_keeps_the_calls_cost_and_writes_no_step(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the scripted worker waits 1.5 s on the model once its tests have run: the lease
    # is taken from it meanwhile, so its reply arrives for a lease it no longer holds
    monkeypatch.setenv("AGENTOS_SCRIPTED_DELAY", "1.5")
    s = _settings(db_url, tmp_path)
    task = await _claimed(
        s, "lease lost under a reply", description='[call run_command {"command": "true"}]'
    )

    async def take_the_lease() -> None:
        async with await psycopg.AsyncConnection.connect(
            db_url, autocommit=True, row_factory=dict_row
        ) as conn:
            for _ in range(200):
                cur = await conn.execute(
                    "SELECT count(*) AS n FROM agentos.steps WHERE task_id = %s "
                    "AND kind = 'tool_result' AND tool_name = 'run_command'",
                    (task.id,),
                )
                if (await cur.fetchone())["n"]:  # type: ignore[index]
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # the next call is waiting on the model
            await conn.execute(
                "UPDATE agentos.tasks SET lease_token = gen_random_uuid() WHERE id = %s",
                (task.id,),
            )

    kernel, _ = await _run_stage(s, task, during=take_the_lease)
    try:
        async with kernel.connection() as conn:
            rows = await steps.load(conn, task.id, "work")
            cur = await conn.execute(
                "SELECT outcome, cost_usd, prompt_tokens FROM agentos.llm_calls "
                "WHERE task_id = %s ORDER BY id",
                (task.id,),
            )
            llm_calls = await cur.fetchall()
    finally:
        await kernel.close()
    replies = [r for r in rows if r.kind == "llm"]
    # the first reply (the call the task names) is there; the second never was written
    assert len(replies) == 1
    assert json.dumps(replies[0].content["tool_calls"]).count("run_command") == 1
    assert rows[-1].kind == "tool_result"
    # ... but both calls are accounted for, the lost one included
    assert [c["outcome"] for c in llm_calls] == ["ok", "ok"]
    assert all(c["prompt_tokens"] > 0 for c in llm_calls)
