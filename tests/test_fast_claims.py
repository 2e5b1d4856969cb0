"""Claims in one statement, batched stage endings, and a thousand slots in one host
(issue 12): the claim protocol's guarantees hold on the fast path."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import psycopg
import pytest
from agentos.kernel import errors, sessions, tasks
from agentos.kernel.db import Kernel
from agentos.kernel.dispatch import Dispatcher
from agentos.kernel.models import TaskStatus
from agentos.kernel.runtime import HOST_POOL_MAX, AgentHost, Finisher, Work, host_pool_size
from agentos.kernel.settings import Settings


async def _register(kernel: Kernel, role: str, agents: list[str]) -> uuid.UUID:
    async with kernel.connection() as conn:
        return await sessions.register_session(conn, role=role, agents=agents)


async def _rows(kernel: Kernel, sql: str, *params: Any) -> list[dict[str, Any]]:
    async with kernel.connection() as conn:
        return await (await conn.execute(sql, params)).fetchall()


async def _wait_for(cond, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.02)


async def test_an_agent_takes_one_of_its_own_jobs_and_the_role_fills_the_other_slots(
    kernel: Kernel,
) -> None:
    sid = await _register(kernel, "worker", ["w1", "w2", "w3"])
    async with kernel.connection() as conn:
        mine1 = await tasks.create_task(conn, title="for w1 a", assignee="w1", priority=5)
        mine2 = await tasks.create_task(conn, title="for w1 b", assignee="w1", priority=1)
        role1 = await tasks.create_task(conn, title="anyone 1", priority=3)
        role2 = await tasks.create_task(conn, title="anyone 2", priority=2)
        role3 = await tasks.create_task(conn, title="anyone 3", priority=1)
        # a heartbeat activation addressed to w3
        await conn.execute(
            "SELECT agentos.enqueue_activation('agent:w3', 'heartbeat', '{}'::jsonb)"
        )
    d = await Dispatcher(kernel, role="worker", session_id=sid).open()
    try:
        got = await d.claim(["w1", "w2", "w3"])
        # w1 gets its best own job (not two); w3 its activation; w2 the best role job
        assert sorted((a, t.id) for a, t in got.tasks) == sorted(
            [("w1", mine1.id), ("w2", role1.id)]
        )
        assert [(a.agent, a.kind) for a in got.activations] == [("w3", "heartbeat")]
        # the activation is picked by this session until acked; the other jobs wait
        jobs = await _rows(
            kernel,
            "SELECT entrypoint, status, queue_manager_id FROM agentos.pgqueuer ORDER BY id",
        )
        assert [(j["entrypoint"], j["status"]) for j in jobs] == [
            ("agent:w1", "queued"),
            ("role:worker", "queued"),
            ("role:worker", "queued"),
            ("agent:w3", "picked"),
        ]
        assert jobs[-1]["queue_manager_id"] == sid
        # the agents' rows say what they do
        agents = await _rows(
            kernel, "SELECT name, status, current_task_id FROM agentos.agents ORDER BY name"
        )
        assert [(a["name"], a["status"], a["current_task_id"]) for a in agents] == [
            ("w1", "working", mine1.id),
            ("w2", "working", role1.id),
            ("w3", "idle", None),
        ]
        await d.ack(got.activations)
        got = await d.claim(["w3"])
        assert [(a, t.id) for a, t in got.tasks] == [("w3", role2.id)]
        left = await _rows(
            kernel, "SELECT id FROM agentos.tasks WHERE status IN ('inbox', 'assigned')"
        )
        assert {r["id"] for r in left} == {mine2.id, role3.id}
    finally:
        await d.close()


async def test_a_task_row_someone_is_writing_is_left_queued_for_the_next_claim(
    kernel: Kernel, db_url: str
) -> None:
    sid = await _register(kernel, "worker", ["w1"])
    async with kernel.connection() as conn:
        t = await tasks.create_task(conn, title="being edited")
    d = await Dispatcher(kernel, role="worker", session_id=sid).open()
    editor = await psycopg.AsyncConnection.connect(db_url)
    try:
        await editor.execute("SELECT 1 FROM agentos.tasks WHERE id = %s FOR UPDATE", (t.id,))
        # the claim does not wait for the row, and does not drop its job either
        got = await asyncio.wait_for(d.claim(["w1"]), 5)
        assert got.tasks == [] and got.dropped == 0
        jobs = await _rows(kernel, "SELECT status FROM agentos.pgqueuer")
        assert [j["status"] for j in jobs] == ["queued"]
        await editor.rollback()
        got = await d.claim(["w1"])
        assert [(a, x.id) for a, x in got.tasks] == [("w1", t.id)]
    finally:
        await editor.close()
        await d.close()


async def test_a_dead_session_claims_nothing_on_the_fast_path(kernel: Kernel) -> None:
    sid = await _register(kernel, "worker", ["w1"])
    async with kernel.connection() as conn:
        await tasks.create_task(conn, title="not for the dead")
        await conn.execute(
            "UPDATE agentos.agent_sessions SET status = 'dead' WHERE id = %s", (sid,)
        )
    d = await Dispatcher(kernel, role="worker", session_id=sid).open()
    try:
        got = await d.claim(["w1"])
        assert got.tasks == [] and got.activations == []
        jobs = await _rows(kernel, "SELECT status FROM agentos.pgqueuer")
        assert [j["status"] for j in jobs] == ["queued"]
    finally:
        await d.close()


async def test_endings_that_come_together_are_written_in_one_statement(kernel: Kernel) -> None:
    agents = [f"f{i}" for i in range(8)]
    sid = await _register(kernel, "worker", agents)
    async with kernel.connection() as conn:
        made = [await tasks.create_task(conn, title=f"t{i}") for i in range(8)]
    d = await Dispatcher(kernel, role="worker", session_id=sid).open()
    try:
        got = await d.claim(agents)
        assert len(got.tasks) == 8
    finally:
        await d.close()
    host = AgentHost(kernel, role="worker", agents=agents, handler=_never)
    by_agent = dict(got.tasks)
    # one lease stolen meanwhile: its holder alone hears StaleLease
    victim = by_agent["f3"]
    async with kernel.connection() as conn:
        await conn.execute(
            "UPDATE agentos.tasks SET lease_token = gen_random_uuid() WHERE id = %s", (victim.id,)
        )
    results = await asyncio.gather(
        *(
            host.finisher.finish(t, actor=a, to=TaskStatus.done, result=f"r-{a}")
            for a, t in got.tasks
        ),
        return_exceptions=True,
    )
    assert host.finisher.batches == 1
    outcome = {a: r for (a, _), r in zip(got.tasks, results, strict=True)}
    assert isinstance(outcome["f3"], errors.StaleLease)
    for a, r in outcome.items():
        if a != "f3":
            assert not isinstance(r, BaseException), r
            assert r.status == TaskStatus.done and r.result == f"r-{a}" and r.lease_token is None
    rows = await _rows(
        kernel,
        "SELECT t.id, t.status, "
        "(SELECT count(*) FROM agentos.activities a WHERE a.task_id = t.id "
        " AND a.kind = 'task.done') AS done_rows FROM agentos.tasks t ORDER BY t.id",
    )
    assert [(r["status"], r["done_rows"]) for r in rows if r["id"] != victim.id] == [
        ("done", 1)
    ] * 7
    assert {r["id"] for r in rows} == {t.id for t in made}
    # the ended agents are idle again; the robbed one still points at its (stolen) task
    agents_now = await _rows(
        kernel, "SELECT name, status, current_task_id FROM agentos.agents ORDER BY name"
    )
    for a in agents_now:
        if a["name"] == "f3":
            assert (a["status"], a["current_task_id"]) == ("working", victim.id)
        else:
            assert (a["status"], a["current_task_id"]) == ("idle", None)


async def test_a_refused_ending_fails_alone_and_the_rest_of_its_batch_is_written(
    kernel: Kernel,
) -> None:
    agents = ["g1", "g2", "g3"]
    sid = await _register(kernel, "worker", agents)
    async with kernel.connection() as conn:
        for i in range(3):
            await tasks.create_task(conn, title=f"t{i}")
    d = await Dispatcher(kernel, role="worker", session_id=sid).open()
    try:
        got = await d.claim(agents)
    finally:
        await d.close()
    host = AgentHost(kernel, role="worker", agents=agents, handler=_never)
    # in_progress -> in_progress is refused by the state machine
    asks = [TaskStatus.done, TaskStatus.in_progress, TaskStatus.review]
    results = await asyncio.gather(
        *(
            host.finisher.finish(t, actor=a, to=to)
            for (a, t), to in zip(got.tasks, asks, strict=True)
        ),
        return_exceptions=True,
    )
    assert isinstance(results[1], errors.KernelError), results
    assert not isinstance(results[1], errors.StaleLease)
    assert "already in_progress" in str(results[1])
    assert not isinstance(results[0], BaseException) and results[0].status == TaskStatus.done
    assert not isinstance(results[2], BaseException) and results[2].status == TaskStatus.review
    refused = await _rows(
        kernel, "SELECT status, lease_agent FROM agentos.tasks WHERE id = %s", got.tasks[1][1].id
    )
    assert refused == [{"status": "in_progress", "lease_agent": got.tasks[1][0]}]


async def _never(kernel: Kernel, work: Work) -> None:
    raise AssertionError("not run")


async def test_finish_soon_frees_the_slot_and_the_ending_is_written_before_shutdown(
    kernel: Kernel,
) -> None:
    ran: list[int] = []
    host: AgentHost

    async def handler(k: Kernel, work: Work) -> None:
        assert work.task is not None
        ran.append(work.task.id)
        host.finish_soon(work, to=TaskStatus.done, result="quick")

    host = AgentHost(kernel, role="worker", agents=["s1"], handler=handler)
    runner = asyncio.create_task(host.run())
    await asyncio.wait_for(host.ready.wait(), 10)
    async with kernel.connection() as conn:
        made = [await tasks.create_task(conn, title=f"t{i}") for i in range(30)]
    try:
        await _wait_for(lambda: len(ran) == 30)
    finally:
        host.stop()
        await runner
    rows = await _rows(kernel, "SELECT status, result, lease_token FROM agentos.tasks ORDER BY id")
    assert rows == [{"status": "done", "result": "quick", "lease_token": None}] * 30
    assert sorted(ran) == [t.id for t in made]
    claims = await _rows(
        kernel,
        "SELECT task_id, count(*) AS n FROM agentos.activities WHERE kind = 'task.in_progress' "
        "GROUP BY task_id HAVING count(*) <> 1",
    )
    assert claims == []
    agent = await _rows(kernel, "SELECT status, current_task_id FROM agentos.agents")
    assert agent == [{"status": "offline", "current_task_id": None}]
    assert host.stale == 0 and host.ending == {}


async def test_a_lease_is_renewed_while_its_ending_waits(
    kernel: Kernel, settings: Settings
) -> None:
    """An ending that cannot be written yet (its writer's only connection is taken)
    keeps its lease alive past expiry, and is written once the connection is back."""
    kernel.settings.lease_seconds = 1.5
    handed = asyncio.Event()
    host: AgentHost

    async def handler(k: Kernel, work: Work) -> None:
        host.finish_soon(work, to=TaskStatus.done)
        handed.set()

    writer_kernel = await Kernel(settings).open(min_size=1, max_size=1)
    host = AgentHost(kernel, role="worker", agents=["r1"], handler=handler)
    host.finisher = Finisher(writer_kernel)
    async with kernel.connection() as conn:
        await tasks.create_task(conn, title="slow ending")
    runner = asyncio.create_task(host.run())
    try:
        async with writer_kernel.connection():  # the ending's writer waits for this
            await asyncio.wait_for(host.ready.wait(), 10)
            await asyncio.wait_for(handed.wait(), 10)
            claimed = await _rows(kernel, "SELECT lease_expires_at FROM agentos.tasks")
            await asyncio.sleep(3 * 1.5)  # three lease periods
            held = await _rows(kernel, "SELECT status, lease_expires_at FROM agentos.tasks")
            assert len(host.ending) == 1  # handed over, not written
        await _wait_for(lambda: not host.ending, timeout=10)
    finally:
        host.stop()
        await runner
        await writer_kernel.close()
    assert held[0]["status"] == "in_progress"
    assert held[0]["lease_expires_at"] > claimed[0]["lease_expires_at"]
    final = await _rows(kernel, "SELECT status, lease_token FROM agentos.tasks")
    assert final == [{"status": "done", "lease_token": None}]


@pytest.mark.parametrize("hosts", [2])
async def test_a_thousand_slots_claim_every_task_exactly_once_on_few_connections(
    settings: Settings, db_url: str, hosts: int
) -> None:
    """Two hosts of 1,000 agent slots each compete for 3,000 tasks whose handlers hold
    them a random while: every task is claimed and run once, both hosts are wide at
    once, and each process stays within its connection cap."""
    n, slots = 3000, 1000
    settings.lease_seconds = 20
    kernels = [
        await Kernel(settings).open(min_size=1, max_size=host_pool_size(slots))
        for _ in range(hosts)
    ]
    runs: dict[int, int] = {}
    busy_max = [0] * hosts
    hs: list[AgentHost] = []

    def handler_for(i: int):  # type: ignore[no-untyped-def]
        async def handler(k: Kernel, work: Work) -> None:
            assert work.task is not None
            runs[work.task.id] = runs.get(work.task.id, 0) + 1
            busy_max[i] = max(busy_max[i], len(hs[i].running))
            await asyncio.sleep(random.uniform(0.0, 0.4))
            hs[i].finish_soon(work, to=TaskStatus.done)

        return handler

    for i in range(hosts):
        hs.append(
            AgentHost(
                kernels[i],
                role="wide",
                agents=[f"wide{i}-{j}" for j in range(slots)],
                handler=handler_for(i),
            )
        )
    runners = [asyncio.create_task(h.run()) for h in hs]
    peak = 0
    try:
        for h in hs:
            await asyncio.wait_for(h.ready.wait(), 30)
        with psycopg.connect(db_url, autocommit=True) as raw:
            raw.execute(
                "INSERT INTO agentos.tasks (title, role, created_by) "
                "SELECT 'wide ' || g, 'wide', 'test' FROM generate_series(1, %s) AS g",
                (n,),
            )
            loop = asyncio.get_running_loop()
            end = loop.time() + 120
            while True:
                row = raw.execute(
                    "SELECT (SELECT count(*) FROM agentos.tasks WHERE status = 'done'), "
                    "(SELECT count(*) FROM pg_stat_activity "
                    " WHERE datname = current_database() AND pid <> pg_backend_pid())"
                ).fetchone()
                assert row is not None
                peak = max(peak, row[1])
                if row[0] == n:
                    break
                assert loop.time() < end, f"only {row[0]} of {n} done"
                await asyncio.sleep(0.1)
    finally:
        for h in hs:
            h.stop()
        for r in runners:
            await r
        for k in kernels:
            await k.close()
    assert len(runs) == n and set(runs.values()) == {1}
    assert all(b > 200 for b in busy_max), busy_max  # both hosts ran hundreds at once
    assert sum(h.stale for h in hs) == 0
    async with Kernel(settings) as k:
        twice = await _rows(
            k,
            "SELECT task_id FROM agentos.activities WHERE kind = 'task.in_progress' "
            "GROUP BY task_id HAVING count(*) > 1",
        )
        sessions_n = await _rows(k, "SELECT count(*) AS n FROM agentos.agent_sessions")
    assert twice == []
    assert sessions_n == [{"n": hosts}]  # one session per process, not one per agent
    # pool + listener + claim connection per process
    assert peak <= hosts * (HOST_POOL_MAX + 2), peak
