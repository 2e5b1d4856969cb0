"""Kernel tools and the kernel modules under them, against a real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from agentos.kernel import errors, memory, messages, skills, tasks
from agentos.kernel.db import Kernel
from agentos.tools.base import ToolContext


async def _add_agents(kernel: Kernel, *names: str) -> None:
    async with kernel.connection() as conn:
        for name in names:
            await conn.execute(
                "INSERT INTO agentos.agents (name, role) VALUES (%s, %s)",
                (name, name.split("-")[0]),
            )


@pytest.fixture
async def team(kernel: Kernel, worktree: Path) -> AsyncIterator[dict[str, ToolContext]]:
    """Three agents and a goal task held (assigned) by the orchestrator; a context each."""
    await _add_agents(kernel, "orchestrator-1", "worker-1", "worker-2")
    async with kernel.connection() as conn:
        goal = await tasks.create_task(
            conn, title="The goal", role="orchestrator", assignee="orchestrator-1"
        )

    def ctx(agent: str, task_id: int | None) -> ToolContext:
        return ToolContext(
            kernel=kernel, agent=agent, role=agent.split("-")[0], task_id=task_id, worktree=worktree
        )

    yield {
        "orch": ctx("orchestrator-1", goal.id),
        "w1": ctx("worker-1", None),
        "w2": ctx("worker-2", None),
    }


# --------------------------------------------------------------- subtasks ----


async def test_create_subtask_with_parent_and_dependencies(
    kernel: Kernel, team: dict[str, ToolContext], call
) -> None:
    orch = team["orch"]
    r1 = await call(
        orch,
        "create_subtask",
        {"title": "Write the parser", "acceptance": "tests pass", "priority": 5},
    )
    assert r1.ok, r1.output
    first = int(r1.output.split("#")[1].split()[0])
    r2 = await call(
        orch,
        "create_subtask",
        {"title": "Document the parser", "role": "worker", "depends_on": [first]},
    )
    assert r2.ok and f"after #{first}" in r2.output
    second = int(r2.output.split("#")[1].split()[0])
    async with kernel.connection() as conn:
        t1 = await tasks.get_task(conn, first)
        t2 = await tasks.get_task(conn, second)
    assert t1.parent_id == orch.task_id and t2.parent_id == orch.task_id
    assert t1.created_by == "orchestrator-1" and t1.priority == 5 and t1.acceptance == "tests pass"
    assert t2.depends_on == [first]
    assert r1.output == f"created task #{first} [inbox] for worker: Write the parser"


async def test_create_subtask_errors_are_readable(
    team: dict[str, ToolContext], call, monkeypatch: pytest.MonkeyPatch
) -> None:
    orch = team["orch"]
    r = await call(orch, "create_subtask", {"title": "x", "depends_on": [9999]})
    assert not r.ok and r.output == "error: no task 9999 to depend on"
    r = await call(orch, "create_subtask", {"title": "x", "role": "Bad Role"})
    assert not r.ok and "bad role name" in r.output
    r = await call(orch, "create_subtask", {"title": "x", "priority": "high"})
    assert not r.ok and "priority" in r.output
    from agentos.tools import kernel_tools

    monkeypatch.setattr(kernel_tools, "MAX_SUBTASKS", 1)
    assert (await call(orch, "create_subtask", {"title": "one"})).ok
    r = await call(orch, "create_subtask", {"title": "two"})
    assert not r.ok and "the limit is 1" in r.output


async def test_kernel_tools_without_a_database(ctx: ToolContext, call) -> None:
    r = await call(ctx, "read_memory")
    assert not r.ok and "needs the database" in r.output


# --------------------------------------------------------------- messages ----


async def test_direct_message_wakes_the_addressee_and_is_read_once(
    kernel: Kernel, team: dict[str, ToolContext], call
) -> None:
    r = await call(team["orch"], "send_message", {"to_agent": "worker-1", "body": "ping?"})
    assert r.ok and r.output.startswith("sent message #") and r.output.endswith("to worker-1")
    async with kernel.connection() as conn:
        jobs = await (
            await conn.execute(
                "SELECT entrypoint, convert_from(payload, 'UTF8') AS payload "
                "FROM agentos.pgqueuer WHERE dedupe_key = 'message:worker-1'"
            )
        ).fetchall()
    assert len(jobs) == 1 and jobs[0]["entrypoint"] == "agent:worker-1"
    assert json.loads(jobs[0]["payload"])["kind"] == "message"
    # a second message while the first wake-up is queued does not queue another
    await call(team["orch"], "send_message", {"to_agent": "worker-1", "body": "still there?"})

    r = await call(team["w1"], "read_messages")
    assert r.ok
    assert "from orchestrator-1 to worker-1:\nping?" in r.output
    assert r.output.index("ping?") < r.output.index("still there?")  # oldest first
    assert (await call(team["w1"], "read_messages")).output == "no unread messages"
    again = await call(team["w1"], "read_messages", {"unread_only": False})
    assert "ping?" in again.output
    assert (await call(team["w2"], "read_messages")).output == "no unread messages"
    async with kernel.connection() as conn:
        n = await (
            await conn.execute(
                "SELECT count(*) AS n FROM agentos.pgqueuer WHERE dedupe_key = 'message:worker-1'"
            )
        ).fetchone()
    assert n is not None and n["n"] == 1


async def test_task_threads_and_broadcasts(
    kernel: Kernel, team: dict[str, ToolContext], call
) -> None:
    async with kernel.connection() as conn:
        task = await tasks.create_task(conn, title="Fix it", assignee="worker-2")
    # the orchestrator's default target is its own task's thread
    r = await call(team["orch"], "send_message", {"body": "plan ready", "kind": "status"})
    assert r.ok and r.output.endswith(f"to task #{team['orch'].task_id}")
    r = await call(team["orch"], "send_message", {"task_id": task.id, "body": "use the v2 API"})
    assert r.ok
    r = await call(team["w1"], "send_message", {"broadcast": True, "body": "main is red"})
    assert r.ok and r.output.endswith("to everyone")

    w2 = await call(team["w2"], "read_messages")
    assert "use the v2 API" in w2.output and "main is red" in w2.output
    assert "plan ready" not in w2.output  # not its task
    w1 = await call(team["w1"], "read_messages", {"unread_only": False})
    assert w1.output == "no messages"  # its own broadcast is not its mail; the rest is not its
    orch = await call(team["orch"], "read_messages", {"unread_only": False})
    assert "main is red" in orch.output and "plan ready" not in orch.output  # own message
    assert "[broadcast]" in orch.output
    thread = await call(team["w2"], "read_messages", {"unread_only": False, "task_id": task.id})
    assert "use the v2 API" in thread.output and "main is red" not in thread.output


async def test_send_message_errors_are_readable(team: dict[str, ToolContext], call) -> None:
    r = await call(team["orch"], "send_message", {"to_agent": "nobody", "body": "hi"})
    assert not r.ok and r.output == "error: no agent or person 'nobody' (see `agentos agent list`)"
    r = await call(team["orch"], "send_message", {"task_id": 424242, "body": "hi"})
    assert not r.ok and r.output == "error: no task 424242"
    r = await call(team["w1"], "send_message", {"body": "to whom?"})
    assert not r.ok and "to_agent, task_id, channel, or broadcast" in r.output
    r = await call(team["w1"], "send_message", {"broadcast": True, "to_agent": "w", "body": "x"})
    assert not r.ok and "broadcast has no to_agent, task_id or channel" in r.output
    r = await call(team["w1"], "send_message", {"to_agent": "worker-2", "body": "x", "kind": "?"})
    assert not r.ok and "kind" in r.output


async def test_message_functions(kernel: Kernel, team: dict[str, ToolContext]) -> None:
    async with kernel.connection() as conn:
        with pytest.raises(errors.BadInput, match="needs a body"):
            await messages.send_message(conn, body="   ", to_agent="worker-1")
        with pytest.raises(errors.BadInput, match="unknown message kind"):
            await messages.send_message(conn, body="x", to_agent="worker-1", kind="shout")
        with pytest.raises(errors.BadInput, match="no addressee"):
            await messages.send_message(conn, body="x", to_agent="worker-1", kind="broadcast")
        b = await messages.send_message(conn, body="  all hands  ", kind="question")
        # a message with no writer named is from whoever is acting (the database user)
        me = await (await conn.execute("SELECT current_user AS u")).fetchone()
        assert b.kind == "broadcast" and b.body == "all hands" and b.from_agent == me["u"]
        d = await messages.send_message(
            conn, body="for you", to_agent="worker-1", from_agent="worker-1"
        )
        # writing to oneself wakes nobody
        row = await (
            await conn.execute(
                "SELECT 1 FROM agentos.pgqueuer WHERE dedupe_key = 'message:worker-1'"
            )
        ).fetchone()
        assert row is None
        everything = await messages.list_messages(conn)
        assert [m.id for m in everything] == [b.id, d.id]
        assert [m.id for m in await messages.list_messages(conn, limit=1)] == [d.id]
        assert await messages.mark_read(conn, [b.id, d.id], reader="worker-1") == 2
        assert await messages.mark_read(conn, [b.id], reader="worker-1") == 0
        assert await messages.mark_read(conn, [], reader="worker-1") == 0
        # d was addressed to worker-1: its read_at is worker-1's receipt; b is a broadcast,
        # read by worker-1 only (receipts are per reader)
        assert [m.id for m in await messages.list_messages(conn, unread_only=True)] == [b.id]
        assert await messages.list_messages(conn, agent="worker-1", unread_only=True) == []
        assert [
            m.id for m in await messages.list_messages(conn, agent="worker-2", unread_only=True)
        ] == [b.id]
        with pytest.raises(errors.BadInput, match="limit"):
            await messages.list_messages(conn, limit=0)
        activity = await (
            await conn.execute(
                "SELECT kind, actor FROM agentos.activities WHERE kind = 'message.sent' "
                "ORDER BY id DESC LIMIT 1"
            )
        ).fetchone()
        assert activity == {"kind": "message.sent", "actor": "worker-1"}


# ----------------------------------------------------------------- memory ----


async def test_memory_round_trip_and_cap(
    kernel: Kernel, team: dict[str, ToolContext], call
) -> None:
    w1 = team["w1"]
    assert (await call(w1, "read_memory")).output == "(your memory is empty)"
    r = await call(w1, "write_memory", {"text": "The tests live in tests/."})
    assert r.ok and r.output == "memory saved (25 of 20000 characters)"
    r = await call(w1, "write_memory", {"text": "Run pytest -q.", "append": True})
    assert r.ok
    assert (await call(w1, "read_memory")).output == "The tests live in tests/.\nRun pytest -q."
    assert (await call(team["w2"], "read_memory")).output == "(your memory is empty)"
    r = await call(w1, "write_memory", {"text": "x" * 20_001})
    assert not r.ok and "text" in r.output
    r = await call(w1, "write_memory", {"text": "y" * 19_990, "append": True})
    assert not r.ok and "the limit is 20000" in r.output
    async with kernel.connection() as conn:
        assert await memory.read_memory(conn, "worker-1") == (
            "The tests live in tests/.\nRun pytest -q."
        )
        with pytest.raises(errors.NotFound, match="no agent 'ghost'"):
            await memory.read_memory(conn, "ghost")
        with pytest.raises(errors.NotFound):
            await memory.write_memory(conn, "ghost", "boo")
        with pytest.raises(errors.BadInput):
            await memory.write_memory(conn, "worker-1", "z" * (memory.MAX_MEMORY + 1))
        n = await (
            await conn.execute(
                "SELECT count(*) AS n FROM agentos.activities WHERE kind = 'agent.memory' "
                "AND actor = 'worker-1'"
            )
        ).fetchone()
    assert n == {"n": 2}


# ----------------------------------------------------------------- skills ----


async def test_skills_library(kernel: Kernel, team: dict[str, ToolContext], call) -> None:
    w1 = team["w1"]
    assert (await call(w1, "list_skills")).output == "no skills in the library"
    async with kernel.connection() as conn:
        s = await skills.add_skill(
            conn, "pytest-tips", "# Pytest\nUse -x.", "How we run   the tests"
        )
        assert s.description == "How we run the tests"
        await skills.add_skill(conn, "git-hygiene", "Small commits.")
        with pytest.raises(errors.BadInput, match="exists"):
            await skills.add_skill(conn, "pytest-tips", "other")
        replaced = await skills.add_skill(conn, "pytest-tips", "# Pytest\nUse -q.", replace=True)
        assert replaced.body.endswith("-q.") and replaced.description == ""
        with pytest.raises(errors.BadInput, match="bad skill name"):
            await skills.add_skill(conn, "Bad Name", "x")
        with pytest.raises(errors.BadInput, match="needs a body"):
            await skills.add_skill(conn, "empty", "  ")
        assert [k.name for k in await skills.list_skills(conn)] == ["git-hygiene", "pytest-tips"]
    r = await call(w1, "list_skills")
    assert r.output == "git-hygiene: (no description)\npytest-tips: (no description)"
    r = await call(w1, "read_skill", {"name": "pytest-tips"})
    assert r.ok and r.output.startswith("# pytest-tips") and "Use -q." in r.output
    r = await call(w1, "read_skill", {"name": "nope"})
    assert not r.ok and r.output == "error: no skill 'nope'"
    async with kernel.connection() as conn:
        await skills.remove_skill(conn, "git-hygiene")
        with pytest.raises(errors.NotFound):
            await skills.remove_skill(conn, "git-hygiene")
        with pytest.raises(errors.NotFound):
            await skills.get_skill(conn, "git-hygiene")


async def test_channels_and_replies_through_the_tool(
    kernel: Kernel, team: dict[str, ToolContext], call
) -> None:
    from agentos.kernel import channels

    async with kernel.connection() as conn:
        await channels.create_channel(
            conn, "ops", members=["worker-1", "worker-2"], created_by="alice"
        )
        q = await messages.send_message(
            conn, body="Who broke main?", to_agent="worker-1", from_agent="alice", as_person=True
        )
    r = await call(team["w1"], "send_message", {"channel": "ops", "body": "@worker-2 was it you?"})
    assert r.ok and r.output.endswith("to channel ops")
    r = await call(
        team["w1"], "send_message", {"reply_to": q.id, "body": "Not me.", "kind": "answer"}
    )
    assert r.ok and r.output.endswith("to alice")  # back to whoever wrote, in its thread
    w2 = await call(team["w2"], "read_messages")
    assert "@worker-2 was it you?" in w2.output and "to channel ops" in w2.output
    async with kernel.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT channel_id IS NOT NULL AS in_channel, woken, reply_to, thread_id "
                "FROM agentos.messages WHERE from_agent = 'worker-1' ORDER BY id"
            )
        ).fetchall()
    assert rows == [
        {
            "in_channel": True,
            "woken": ["worker-2"],
            "reply_to": None,
            "thread_id": rows[0]["thread_id"],
        },
        {"in_channel": False, "woken": [], "reply_to": q.id, "thread_id": q.id},
    ]
    r = await call(team["w1"], "send_message", {"channel": "nope", "body": "x"})
    assert not r.ok and r.output == "error: no channel 'nope' (see `agentos channel list`)"
