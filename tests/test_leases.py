"""Leases: a killed holder's task is rescued and finished by another; stale writes are rejected."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from agentos.kernel import errors, sessions, tasks
from agentos.kernel.db import Kernel
from agentos.kernel.dispatch import Dispatcher
from agentos.kernel.duties import KernelDuties
from agentos.kernel.models import TaskStatus
from agentos.kernel.runtime import AgentHost, Work

HOLDER = textwrap.dedent("""
    import asyncio, sys
    from agentos.kernel.settings import Settings
    from agentos.kernel.db import Kernel
    from agentos.kernel.runtime import AgentHost

    async def main():
        kernel = await Kernel(Settings(database_url=sys.argv[1], lease_seconds=2)).open()
        async def hold(k, work):
            print("holding", work.task.id, flush=True)
            await asyncio.sleep(3600)
        await AgentHost(kernel, role="worker", agents=["doomed"], handler=hold).run()

    asyncio.run(main())
""")


async def test_a_killed_holder_task_is_rescued_and_finished_by_another(
    kernel: Kernel, db_url: str
) -> None:
    async with kernel.connection() as conn:
        t = await tasks.create_task(conn, title="survive a SIGKILL")
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, db_url], stdout=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.split() == ["holding", str(t.id)]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        killed_at = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()

    duties = KernelDuties(kernel, uuid.uuid4(), interval=0.2)
    duty_task = asyncio.create_task(duties.run())
    done: list[int] = []

    async def finish(k: Kernel, work: Work) -> None:
        assert work.task is not None
        async with k.connection() as conn:
            await tasks.complete(conn, work.task, actor=work.agent, to=TaskStatus.done)
        done.append(work.task.id)

    host = AgentHost(kernel, role="worker", agents=["survivor"], handler=finish)
    runner = asyncio.create_task(host.run())
    try:
        lease, sweep, backoff = kernel.settings.lease_seconds, 0.2, 1.0
        limit = lease + sweep + backoff + kernel.settings.poll_interval + 2.0
        while t.id not in done:
            assert time.monotonic() - killed_at < limit, "not rescued within lease + sweep time"
            await asyncio.sleep(0.05)
    finally:
        host.stop()
        duties.stop()
        await runner
        await duty_task
    async with kernel.connection() as conn:
        final = await tasks.get_task(conn, t.id)
        log = await (
            await conn.execute(
                "SELECT kind, message FROM agentos.activities WHERE task_id = %s ORDER BY id",
                (t.id,),
            )
        ).fetchall()
    assert final.status == TaskStatus.done
    kinds = [r["kind"] for r in log]
    assert kinds.count("task.in_progress") == 2
    assert any("lease of doomed expired" in r["message"] for r in log)


async def test_a_frozen_holders_late_completion_is_rejected(kernel: Kernel) -> None:
    sid = await _session(kernel, ["frozen", "fresh"])
    d = await Dispatcher(kernel, role="worker", session_id=sid).open()
    try:
        async with kernel.connection() as conn:
            t = await tasks.create_task(conn, title="freeze")
        ((agent, stale),) = (await d.claim(["frozen"])).tasks
        future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        async with kernel.connection() as conn:
            rescued = await (
                await conn.execute("SELECT * FROM agentos.rescue_expired_leases(%s)", (future,))
            ).fetchall()
        assert [(r["task_id"], r["outcome"]) for r in rescued] == [(t.id, "retried")]
        async with kernel.connection() as conn:  # the job waits out the backoff in real time
            await conn.execute(
                "UPDATE agentos.pgqueuer SET execute_after = now() WHERE dedupe_key = %s",
                (f"task:{t.id}",),
            )
        later = future + dt.timedelta(minutes=1)
        ((agent2, fresh),) = (await d.claim(["fresh"], now=later)).tasks
        assert fresh.lease_token != stale.lease_token
        async with kernel.connection() as conn:
            with pytest.raises(errors.StaleLease):
                await tasks.complete(conn, stale, actor="frozen", to=TaskStatus.done)
            still = await tasks.get_task(conn, t.id)
            assert still.status == TaskStatus.in_progress and still.lease_agent == "fresh"
            await tasks.complete(conn, fresh, actor="fresh", to=TaskStatus.done)
        assert await d.renew([stale.lease_token]) == set()  # type: ignore[list-item]
    finally:
        await d.close()


async def test_expired_leases_back_off_then_fail_after_max_attempts(kernel: Kernel) -> None:
    sid = await _session(kernel, ["w"])
    d = await Dispatcher(kernel, role="worker", session_id=sid).open()
    try:
        async with kernel.connection() as conn:
            t = await tasks.create_task(conn, title="doomed", max_attempts=2)
        now = dt.datetime.now(dt.UTC)
        outcomes = []
        for attempt in range(1, 3):
            got = (await d.claim(["w"], now=now)).tasks
            assert [x.id for _, x in got] == [t.id], attempt
            assert got[0][1].attempts == attempt
            now += dt.timedelta(minutes=10)
            async with kernel.connection() as conn:
                rows = await (
                    await conn.execute("SELECT * FROM agentos.rescue_expired_leases(%s)", (now,))
                ).fetchall()
                outcomes += [r["outcome"] for r in rows]
                if attempt == 1:
                    back = await tasks.get_task(conn, t.id)
                    # backoff: not claimable again before available_at
                    assert back.status == TaskStatus.inbox and back.available_at > now
                    assert (await d.claim(["w"], now=now)).tasks == []
                    now = back.available_at + dt.timedelta(seconds=1)
                    await conn.execute(
                        "UPDATE agentos.pgqueuer SET execute_after = now() WHERE dedupe_key = %s",
                        (f"task:{t.id}",),
                    )
        assert outcomes == ["retried", "failed"]
        async with kernel.connection() as conn:
            final = await tasks.get_task(conn, t.id)
        assert final.status == TaskStatus.failed
        assert "giving up" in (final.error or "")
        async with kernel.connection() as conn:
            again = await tasks.retry(conn, t.id, actor="human")
        assert again.status == TaskStatus.inbox and again.attempts == 0 and again.error is None
    finally:
        await d.close()


async def _session(kernel: Kernel, agents: list[str]) -> uuid.UUID:
    async with kernel.connection() as conn:
        return await sessions.register_session(conn, role="worker", agents=agents)
