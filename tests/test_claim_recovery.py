"""No claim is forgotten: lost claim replies, dead sessions, database blips (issue 8).

Each test makes the failure happen for real on the test's own database: a lease given
to the host behind its back (a claim that committed while its reply was lost), a
session reaped while its process runs, server backends terminated under work in flight.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
from collections.abc import Callable

import psycopg
from agentos.kernel import sessions, tasks
from agentos.kernel.db import Kernel
from agentos.kernel.dispatch import Dispatcher
from agentos.kernel.models import TaskStatus
from agentos.kernel.runtime import AgentHost, Handler, Work
from agentos.sql import query

# the reaper judges liveness at this time: every running session is past its leases
_AN_HOUR_ON = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)


async def _wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.02)


async def _start(
    kernel: Kernel, handler: Handler, agents: list[str]
) -> tuple[AgentHost, asyncio.Task[None]]:
    host = AgentHost(kernel, role="worker", agents=agents, handler=handler)
    runner = asyncio.create_task(host.run())
    await asyncio.wait_for(host.ready.wait(), 10)
    return host, runner


def _completer(done: list[int]) -> Handler:
    async def handler(k: Kernel, work: Work) -> None:
        assert work.task is not None
        async with k.connection() as conn:
            await tasks.complete(conn, work.task, actor=work.agent, to=TaskStatus.done)
        done.append(work.task.id)

    return handler


async def _lease_behind_its_back(kernel: Kernel, host: AgentHost, agent: str, title: str) -> int:
    """A task leased to host's agent by SQL, as a claim whose reply never arrived."""
    async with kernel.connection() as conn:
        # role 'elsewhere': no host of this test would claim it by itself
        t = await tasks.create_task(conn, title=title, role="elsewhere")
        rows = await (
            await conn.execute(
                "SELECT * FROM agentos.claim_task(%s, %s, 'elsewhere', %s, interval '1 hour')",
                (t.id, agent, host.session_id),
            )
        ).fetchall()
    assert len(rows) == 1
    return t.id


async def _kinds(kernel: Kernel, task_id: int) -> list[tuple[str, str]]:
    async with kernel.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT kind, message FROM agentos.activities WHERE task_id = %s ORDER BY id",
                (task_id,),
            )
        ).fetchall()
    return [(r["kind"], r["message"]) for r in rows]


def _terminate_backends(db_url: str, *, keep: int | None = None) -> None:
    """Kill every server backend of this database (pool, dispatcher, listener)."""
    with psycopg.connect(db_url, autocommit=True) as raw:
        raw.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND pid IS DISTINCT FROM %s",
            (keep,),
        )


async def test_a_lease_given_behind_the_hosts_back_is_resumed_long_before_it_expires(
    kernel: Kernel,
) -> None:
    done: list[int] = []
    host, runner = await _start(kernel, _completer(done), ["lost-1"])
    try:
        tid = await _lease_behind_its_back(kernel, host, "lost-1", "reply lost")
        # no leader runs here: without the host's own look-up this would wait forever
        await _wait_for(lambda: tid in done)
        assert host.recovered == 1
        async with kernel.connection() as conn:
            t = await tasks.get_task(conn, tid)
        assert t.status == TaskStatus.done
        kinds = [k for k, _ in await _kinds(kernel, tid)]
        assert kinds.count("task.in_progress") == 1 and "task.inbox" not in kinds
    finally:
        host.stop()
        await runner


async def test_a_lost_claim_for_a_busy_agent_is_released_without_spending_an_attempt(
    kernel: Kernel,
) -> None:
    started = asyncio.Event()

    async def hold(k: Kernel, work: Work) -> None:
        started.set()
        await asyncio.sleep(3600)

    host, runner = await _start(kernel, hold, ["busy-1"])
    try:
        async with kernel.connection() as conn:
            await tasks.create_task(conn, title="keeps busy-1 busy")
        await asyncio.wait_for(started.wait(), 10)
        tid = await _lease_behind_its_back(kernel, host, "busy-1", "second lease")

        async def back_in_inbox() -> bool:
            async with kernel.connection() as conn:
                return (await tasks.get_task(conn, tid)).status == TaskStatus.inbox

        loop = asyncio.get_running_loop()
        end = loop.time() + 10
        while not await back_in_inbox():
            assert loop.time() < end, "the lost lease was not released"
            await asyncio.sleep(0.05)
        async with kernel.connection() as conn:
            t = await tasks.get_task(conn, tid)
        assert t.lease_token is None and t.attempts == 0
        assert any("claim lost in transit" in m for _, m in await _kinds(kernel, tid))
    finally:
        host.stop()
        await runner


async def test_a_dead_session_claims_and_renews_nothing(kernel: Kernel) -> None:
    async with kernel.connection() as conn:
        sid = await sessions.register_session(conn, role="worker", agents=["ghost"])
    d = await Dispatcher(kernel, role="worker", session_id=sid).open()
    try:
        async with kernel.connection() as conn:
            first = await tasks.create_task(conn, title="claimed while alive")
        ((_, held),) = (await d.claim(["ghost"])).tasks
        async with kernel.connection() as conn:
            reaped = await (
                await conn.execute(query("reap_dead_sessions"), {"now": _AN_HOUR_ON})
            ).fetchall()
            assert [r["id"] for r in reaped] == [sid]
            assert await sessions.heartbeat(conn, sid) is False
            second = await tasks.create_task(conn, title="offered to the dead")
        assert held.lease_token is not None
        assert await d.renew([held.lease_token]) == set()
        got = await d.claim(["ghost"])
        assert got.tasks == []
        async with kernel.connection() as conn:
            job = await (
                await conn.execute(
                    "SELECT status, queue_manager_id FROM agentos.pgqueuer WHERE dedupe_key = %s",
                    (f"task:{second.id}",),
                )
            ).fetchone()
            t2 = await tasks.get_task(conn, second.id)
        # handed back at once, not left picked by a dead session until a timeout
        assert job is not None and job["status"] == "queued" and job["queue_manager_id"] is None
        assert t2.status == TaskStatus.inbox and t2.lease_token is None
        assert first.id == held.id
    finally:
        await d.close()


async def test_a_host_whose_session_was_declared_dead_registers_anew_and_works_on(
    kernel: Kernel,
) -> None:
    done: list[int] = []
    host, runner = await _start(kernel, _completer(done), ["phoenix"])
    try:
        old = host.session_id
        async with kernel.connection() as conn:
            await conn.execute(query("reap_dead_sessions"), {"now": _AN_HOUR_ON})
        await _wait_for(lambda: host.session_id != old)
        async with kernel.connection() as conn:
            t = await tasks.create_task(conn, title="after the rebirth")
        await _wait_for(lambda: t.id in done)
        async with kernel.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT id, status FROM agentos.agent_sessions ORDER BY started_at"
                )
            ).fetchall()
        assert [(r["id"], r["status"]) for r in rows] == [
            (old, "dead"),
            (host.session_id, "running"),
        ]
    finally:
        host.stop()
        await runner


async def test_work_in_flight_survives_a_database_blip_without_spending_an_attempt(
    kernel: Kernel, db_url: str
) -> None:
    runs: list[int] = []
    failures: list[str] = []

    async def handler(k: Kernel, work: Work) -> None:
        assert work.task is not None
        runs.append(work.task.id)
        async with k.connection() as conn:
            if len(runs) == 1:
                # the blip: every backend of the database dies, this one included
                _terminate_backends(db_url)
            try:
                await tasks.complete(conn, work.task, actor=work.agent, to=TaskStatus.done)
            except Exception as exc:
                failures.append(type(exc).__name__)
                raise

    host, runner = await _start(kernel, handler, ["blip-1"])
    try:
        async with kernel.connection() as conn:
            t = await tasks.create_task(conn, title="through the blip")

        async def status() -> TaskStatus:
            async with kernel.connection() as conn:
                return (await tasks.get_task(conn, t.id)).status

        loop = asyncio.get_running_loop()
        end = loop.time() + 15
        while await status() != TaskStatus.done:
            assert loop.time() < end, (runs, failures)
            await asyncio.sleep(0.05)
        assert failures == ["DatabaseUnavailable"]
        assert runs == [t.id, t.id]  # run again under the same lease, once the database answered
        kinds = [k for k, _ in await _kinds(kernel, t.id)]
        assert kinds.count("task.in_progress") == 1 and "task.inbox" not in kinds
    finally:
        host.stop()
        await runner


async def test_a_release_after_a_database_blip_happens_for_real(
    kernel: Kernel, db_url: str
) -> None:
    started = asyncio.Event()

    async def hold(k: Kernel, work: Work) -> None:
        started.set()
        await asyncio.sleep(3600)

    host, runner = await _start(kernel, hold, ["stopper"])
    async with kernel.connection() as conn:
        t = await tasks.create_task(conn, title="released through a blip")
    await asyncio.wait_for(started.wait(), 10)
    _terminate_backends(db_url)  # every pooled connection is dead now
    host.stop()
    await runner
    async with kernel.connection() as conn:
        after = await tasks.get_task(conn, t.id)
    # ready again at once and the attempt given back, not left to a lease expiry
    assert after.status == TaskStatus.inbox
    assert after.lease_token is None and after.attempts == 0


def test_kernel_warnings_reach_stderr_when_nothing_configured_logging() -> None:
    """The probe's stuck tasks logged nothing visible: kernel warnings must never be
    swallowed (no NullHandler on agentos; pgqueuer's own NullHandler is on its logger)."""
    code = (
        "import logging\n"
        "import agentos.kernel.runtime, agentos.kernel.bench, pgqueuer.core.logconfig\n"
        "logging.getLogger('agentos.kernel.runtime').warning('claim failed: probe')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "claim failed: probe" in out.stderr


async def test_a_handler_that_always_fails_spends_attempts_with_backoff_then_fails(
    kernel: Kernel,
) -> None:
    runs: list[int] = []

    async def crash(k: Kernel, work: Work) -> None:
        assert work.task is not None
        runs.append(work.task.id)
        raise RuntimeError("poison")

    host, runner = await _start(kernel, crash, ["taster"])
    try:
        async with kernel.connection() as conn:
            t = await tasks.create_task(conn, title="poison", max_attempts=2)

        async def status() -> TaskStatus:
            async with kernel.connection() as conn:
                return (await tasks.get_task(conn, t.id)).status

        loop = asyncio.get_running_loop()
        end = loop.time() + 15
        while await status() != TaskStatus.failed:
            assert loop.time() < end, runs
            await asyncio.sleep(0.05)
        async with kernel.connection() as conn:
            final = await tasks.get_task(conn, t.id)
        # one claim per attempt, not a storm: the first failure waited out a backoff
        assert runs == [t.id, t.id]
        assert "poison" in (final.error or "") and "giving up" in (final.error or "")
        messages = [m for k, m in await _kinds(kernel, t.id) if k == "task.inbox"]
        assert len(messages) == 1 and "attempt 1 of 2" in messages[0]
    finally:
        host.stop()
        await runner


async def test_alive_is_one_definition_for_the_view_and_the_reaper(kernel: Kernel) -> None:
    """Issue 13: with a 10 s lease, the agent_status view and the reaper agree (the view
    used to say alive for 90 s, the reaper dead after 30 s)."""
    async with kernel.connection() as conn:
        sid = await sessions.register_session(
            conn, role="worker", agents=["brief"], lease_seconds=10
        )
        await conn.execute(
            "UPDATE agentos.agent_sessions SET heartbeat_at = now() - interval '31 seconds' "
            "WHERE id = %s",
            (sid,),
        )
        row = await (
            await conn.execute("SELECT alive FROM agentos.agent_status WHERE name = 'brief'")
        ).fetchone()
        assert row == {"alive": False}  # 31 s > 3 x 10 s
        reaped = await (await conn.execute(query("reap_dead_sessions"), {"now": None})).fetchall()
        assert [r["id"] for r in reaped] == [sid]
        await conn.execute(
            "UPDATE agentos.agent_sessions SET status = 'running', heartbeat_at = now() "
            "- interval '29 seconds' WHERE id = %s",
            (sid,),
        )
        row = await (
            await conn.execute("SELECT alive FROM agentos.agent_status WHERE name = 'brief'")
        ).fetchone()
        assert row == {"alive": True}
        assert (
            await (await conn.execute(query("reap_dead_sessions"), {"now": None})).fetchall() == []
        )
