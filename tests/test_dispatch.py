"""Dispatch over pgqueuer: exclusive claims, routing, dependencies, psql inserts, listener healing."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
from agentos.kernel import sessions, tasks
from agentos.kernel.db import Kernel
from agentos.kernel.dispatch import Dispatcher
from agentos.kernel.models import TaskStatus
from agentos.kernel.runtime import AgentHost, Work


async def _register(kernel: Kernel, role: str, agents: list[str]) -> uuid.UUID:
    async with kernel.connection() as conn:
        return await sessions.register_session(conn, role=role, agents=agents)


async def test_many_claimers_claim_every_task_exactly_once(kernel: Kernel) -> None:
    n = 300
    async with kernel.connection() as conn:
        for i in range(n):
            await tasks.create_task(conn, title=f"t{i}")
    claimed: list[int] = []

    async def claimer(k: int) -> None:
        agents = [f"c{k}-{j}" for j in range(4)]
        sid = await _register(kernel, "worker", agents)
        d = await Dispatcher(kernel, role="worker", session_id=sid).open()
        try:
            empty = 0
            while empty < 3:
                got = await d.claim(agents)
                if not got.tasks:
                    empty += 1
                    await asyncio.sleep(0.05)
                    continue
                empty = 0
                for _agent, t in got.tasks:
                    claimed.append(t.id)
                    async with kernel.connection() as conn:
                        await tasks.complete(conn, t, actor=_agent, to=TaskStatus.done)
        finally:
            await d.close()

    await asyncio.gather(*(claimer(k) for k in range(6)))
    assert len(claimed) == n
    assert len(set(claimed)) == n
    async with kernel.connection() as conn:
        done = await tasks.list_tasks(conn, status="done")
        row = await (
            await conn.execute(
                "SELECT count(*) AS c FROM agentos.pgqueuer WHERE status IN ('queued','picked')"
            )
        ).fetchone()
    assert len(done) == n
    assert row is not None and row["c"] == 0


async def test_routing_by_role_assignee_and_priority(kernel: Kernel) -> None:
    sid_w = await _register(kernel, "worker", ["w1", "w2"])
    sid_r = await _register(kernel, "reviewer", ["r1"])
    async with kernel.connection() as conn:
        low = await tasks.create_task(conn, title="low", priority=-5)
        high = await tasks.create_task(conn, title="high", priority=50)
        mine = await tasks.create_task(conn, title="for w2", assignee="w2")
        other = await tasks.create_task(conn, title="for reviewers", role="reviewer")
    assert mine.status == TaskStatus.assigned
    dw = await Dispatcher(kernel, role="worker", session_id=sid_w).open()
    dr = await Dispatcher(kernel, role="reviewer", session_id=sid_r).open()
    try:
        # only w1 is free: it must not get w2's task; it gets the highest priority first
        got = await dw.claim(["w1"])
        assert [(a, t.id) for a, t in got.tasks] == [("w1", high.id)]
        got = await dw.claim(["w2"])
        assert [(a, t.id) for a, t in got.tasks] == [("w2", mine.id)]
        got = await dr.claim(["r1"])
        assert [t.id for _, t in got.tasks] == [other.id]
        got = await dr.claim(["r1"])
        assert got.tasks == []
        async with kernel.connection() as conn:
            t = await tasks.get_task(conn, high.id)
            assert t.status == TaskStatus.in_progress and t.lease_agent == "w1"
            # hand to review: the reviewer role gets it
            await tasks.complete(conn, t, actor="w1", to=TaskStatus.review)
        got = await dr.claim(["r1"])
        assert [t.id for _, t in got.tasks] == [high.id]
        assert got.tasks[0][1].status == TaskStatus.review
        got = await dw.claim(["w1"])
        assert [t.id for _, t in got.tasks] == [low.id]
    finally:
        await dw.close()
        await dr.close()


async def test_a_task_is_claimable_only_when_its_dependencies_are_done(kernel: Kernel) -> None:
    sid = await _register(kernel, "worker", ["w1"])
    async with kernel.connection() as conn:
        first = await tasks.create_task(conn, title="first")
        second = await tasks.create_task(conn, title="second", depends_on=[first.id], priority=100)
    d = await Dispatcher(kernel, role="worker", session_id=sid).open()
    try:
        got = await d.claim(["w1"])
        assert [t.id for _, t in got.tasks] == [first.id]
        assert (await d.claim(["w1"])).tasks == []
        async with kernel.connection() as conn:
            await tasks.complete(conn, got.tasks[0][1], actor="w1", to=TaskStatus.done)
        got = await d.claim(["w1"])
        assert [t.id for _, t in got.tasks] == [second.id]
    finally:
        await d.close()


async def _host(
    kernel: Kernel, done: list[int], name: str = "h1"
) -> tuple[AgentHost, asyncio.Task[None]]:
    async def handler(k: Kernel, work: Work) -> None:
        assert work.task is not None
        async with k.connection() as conn:
            await tasks.complete(conn, work.task, actor=work.agent, to=TaskStatus.done)
        done.append(work.task.id)

    host = AgentHost(kernel, role="worker", agents=[name], handler=handler)
    runner = asyncio.create_task(host.run())
    await asyncio.wait_for(host.ready.wait(), 10)
    return host, runner


async def _wait_for(cond, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.01)


async def test_a_row_inserted_with_plain_sql_wakes_a_waiting_agent(
    kernel: Kernel, db_url: str
) -> None:
    done: list[int] = []
    kernel.settings.poll_interval = 30  # prove it is NOTIFY, not the poll, that wakes it
    host, runner = await _host(kernel, done)
    try:
        await asyncio.sleep(0.3)
        with psycopg.connect(db_url, autocommit=True) as raw:
            tid = raw.execute(
                "INSERT INTO agentos.tasks (title, role) VALUES ('from psql', 'worker') "
                "RETURNING id"
            ).fetchone()[0]
        await _wait_for(lambda: tid in done, timeout=5)
    finally:
        host.stop()
        await runner


async def test_work_still_flows_after_the_listener_backend_is_killed(
    kernel: Kernel, db_url: str
) -> None:
    done: list[int] = []
    kernel.settings.poll_interval = 30
    host, runner = await _host(kernel, done)
    try:
        assert host.listener is not None
        old_pid = host.listener.backend_pid
        with psycopg.connect(db_url, autocommit=True) as raw:
            raw.execute("SELECT pg_terminate_backend(%s)", (old_pid,))
        await _wait_for(
            lambda: (
                host.listener is not None
                and host.listener.reconnects >= 1
                and host.listener.connected.is_set()
            )
        )
        assert host.listener.backend_pid != old_pid
        async with kernel.connection() as conn:
            t = await tasks.create_task(conn, title="after the kill")
        await _wait_for(lambda: t.id in done, timeout=5)
    finally:
        host.stop()
        await runner


async def test_a_missed_notification_costs_at_most_one_poll_interval(
    kernel: Kernel, db_url: str
) -> None:
    """With a listener that hears nothing, the poll still finds the work."""
    from agentos.kernel import bus

    kernel.settings.poll_interval = 0.5
    deaf = await bus.Listener(db_url, ["agentos_test_nobody"]).start()
    done: list[int] = []

    async def handler(k: Kernel, work: Work) -> None:
        assert work.task is not None
        async with k.connection() as conn:
            await tasks.complete(conn, work.task, actor=work.agent, to=TaskStatus.done)
        done.append(work.task.id)

    host = AgentHost(kernel, role="worker", agents=["deaf-1"], handler=handler, listener=deaf)
    runner = asyncio.create_task(host.run())
    try:
        await asyncio.wait_for(host.ready.wait(), 10)
        await asyncio.sleep(0.2)
        async with kernel.connection() as conn:
            t = await tasks.create_task(conn, title="poll me")
        await _wait_for(lambda: t.id in done, timeout=3)
    finally:
        host.stop()
        await runner
        await deaf.stop()


async def test_stopping_a_host_releases_its_leases(kernel: Kernel) -> None:
    started = asyncio.Event()

    async def slow(k: Kernel, work: Work) -> None:
        started.set()
        await asyncio.sleep(3600)

    host = AgentHost(kernel, role="worker", agents=["slow-1"], handler=slow)
    runner = asyncio.create_task(host.run())
    await asyncio.wait_for(host.ready.wait(), 10)
    async with kernel.connection() as conn:
        t = await tasks.create_task(conn, title="interrupted")
    await asyncio.wait_for(started.wait(), 5)
    host.stop()
    await runner
    async with kernel.connection() as conn:
        after = await tasks.get_task(conn, t.id)
        agent = await (
            await conn.execute("SELECT status FROM agentos.agents WHERE name = 'slow-1'")
        ).fetchone()
    assert after.status == TaskStatus.inbox
    assert after.lease_token is None and after.attempts == 0
    assert agent is not None and agent["status"] == "offline"
