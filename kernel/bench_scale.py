"""`agentos bench scale`: one process hosting many agents (1,000 by default) on few
server connections, in a scratch database (issue 12).

The consumer is a separate process that hosts N agent slots of one role exactly as
`agentos agent run --role R --concurrency N` does: one AgentHost (one session, one
listener, one claim connection) over a pool of `runtime.host_pool_size(N)`. Its
handler does no work of its own: tasks titled `wake` are finished at once, `hold S`
after S seconds, `burst` after a random 0-200 ms. Every connection it opens carries
the application_name below, so pg_stat_activity counts them (sampled every 50 ms).

Phases, each beside the bare NOTIFY round trip measured first in the same run:

1. wake-ups for idle agents: a task is committed while all N agents are idle, the
   clock runs from the commit to the handler holding the lease; the next task comes
   once the last one is finished;
2. the same while `busy` agents hold tasks (the host renewing their leases);
3. a burst of tasks committed at once, drained by the N slots: claims, tasks run twice,
   how many ran at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import time
from typing import Any

import psycopg
from agentos.kernel.bench import (
    IDLE_GAP,
    Echo,
    _notify_roundtrip,
    _pct,
    _spawn,
    _stop,
    _wait_line,
    scratch_database,
)
from agentos.kernel.db import Kernel
from agentos.kernel.settings import Settings
from psycopg.conninfo import make_conninfo

APP = "agentos-bench-scale"
ROLE = "scale"


def _tagged(url: str) -> str:
    return make_conninfo(url, application_name=APP)


CONNECTIONS_SQL = """
SELECT count(*) FILTER (WHERE application_name = %s) AS process,
       count(*) FILTER (WHERE pid <> pg_backend_pid()) AS database
FROM pg_stat_activity WHERE datname = current_database()
"""


async def _sample_connections(url: str, peak: dict[str, int], stop: asyncio.Event) -> None:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    try:
        while not stop.is_set():
            row = await (await conn.execute(CONNECTIONS_SQL, (APP,))).fetchone()
            if row is not None:
                peak["process"] = max(peak["process"], int(row[0]))
                peak["database"] = max(peak["database"], int(row[1]))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)
    finally:
        await conn.close()


async def _wakes(proc: asyncio.subprocess.Process, conn: Any, n: int, label: str) -> list[float]:
    samples = []
    for i in range(n):
        row = await (
            await conn.execute(
                "INSERT INTO agentos.tasks (title, role, created_by) VALUES (%s, %s, 'bench') "
                "RETURNING id",
                (f"wake {label} {i}", ROLE),
            )
        ).fetchone()
        t0 = time.perf_counter_ns()  # autocommitted: the reply comes after the commit
        line = await _wait_line(proc, "claimed", timeout=30)
        _, tid, ns = line.split()
        assert row is not None and int(tid) == row[0], (line, row)
        samples.append((int(ns) - t0) / 1e6)
        await _wait_line(proc, "done", timeout=30)
        await asyncio.sleep(IDLE_GAP)
    return samples


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50": round(_pct(samples, 50), 3),
        "p95": round(_pct(samples, 95), 3),
        "p99": round(_pct(samples, 99), 3),
        "max": round(max(samples), 3),
        "mean": round(statistics.fmean(samples), 3),
    }


async def _count(conn: Any, sql: str, *params: Any) -> int:
    row = await (await conn.execute(sql, params)).fetchone()
    return int(row[0]) if row else 0


async def scale(
    settings: Settings,
    *,
    agents: int = 1000,
    wake_samples: int = 200,
    busy: int = 500,
    burst: int = 5000,
    echo: Echo = print,
) -> dict[str, Any]:
    """Run the scale benchmark; returns the figures (milliseconds, counts)."""
    from agentos.kernel.runtime import HOST_POOL_MAX, host_pool_size

    say = echo or (lambda _s: None)
    busy = min(busy, agents - 1)
    out: dict[str, Any] = {
        "agents": agents,
        "pool_max": host_pool_size(agents),
        "connection_cap": HOST_POOL_MAX + 2,
    }
    say(f"scale: {agents} agents in one process (pool of at most {out['pool_max']})")
    async with scratch_database(settings) as url:
        notify = await _notify_roundtrip(url, wake_samples)
        peak = {"process": 0, "database": 0}
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sample_connections(url, peak, stop))
        t0 = time.perf_counter()
        proc = await _spawn("consume", _tagged(url), str(agents), module=__name__)
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        try:
            await _wait_line(proc, "ready", timeout=300)
            out["startup_s"] = round(time.perf_counter() - t0, 2)
            out["registered"] = await _count(
                conn, "SELECT count(*) FROM agentos.agents WHERE role = %s", ROLE
            )
            out["sessions"] = await _count(
                conn, "SELECT count(*) FROM agentos.agent_sessions WHERE status = 'running'"
            )
            idle = await _wakes(proc, conn, wake_samples, "idle")
            # held long enough to outlast the busy phase's wake-ups
            hold = max(10.0, wake_samples * 0.05)
            await conn.execute(
                "INSERT INTO agentos.tasks (title, role, created_by) "
                "SELECT %s, %s, 'bench' FROM generate_series(1, %s)",
                (f"hold {hold:g}", ROLE, busy),
            )
            end = time.monotonic() + 120
            while (
                await _count(
                    conn, "SELECT count(*) FROM agentos.tasks WHERE status = 'in_progress'"
                )
                < busy
            ):
                assert time.monotonic() < end, "the held tasks were not all claimed"
                await asyncio.sleep(0.05)
            loaded = await _wakes(proc, conn, wake_samples, "busy")
            b0 = time.perf_counter()
            await conn.execute(
                "INSERT INTO agentos.tasks (title, role, created_by) "
                "SELECT 'burst', %s, 'bench' FROM generate_series(1, %s)",
                (ROLE, burst),
            )
            burst_t0 = time.perf_counter()
            end = time.monotonic() + 600
            while await _count(
                conn,
                "SELECT count(*) FROM agentos.tasks WHERE title = 'burst' AND status <> 'done'",
            ):
                assert time.monotonic() < end, "the burst was not drained"
                await asyncio.sleep(0.05)
            out["burst_s"] = round(time.perf_counter() - burst_t0, 2)
            out["burst_fill_s"] = round(burst_t0 - b0, 2)
            while await _count(conn, "SELECT count(*) FROM agentos.tasks WHERE status <> 'done'"):
                assert time.monotonic() < end, "the held tasks did not finish"
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await sampler
            await _stop([proc])
        assert proc.stdout is not None
        tail = (await proc.stdout.read()).decode().split()
        counts = dict(zip(tail[::2], (int(v) for v in tail[1::2]), strict=False))
        out["claims"] = await _count(
            conn, "SELECT count(*) FROM agentos.activities WHERE kind = 'task.in_progress'"
        )
        out["tasks"] = await _count(conn, "SELECT count(*) FROM agentos.tasks")
        out["double_claims"] = await _count(
            conn,
            "SELECT count(*) FROM (SELECT task_id FROM agentos.activities "
            "WHERE kind = 'task.in_progress' GROUP BY task_id HAVING count(*) > 1) AS d",
        )
        await conn.close()
    out["run_twice"] = counts.get("twice", -1)
    out["max_running"] = counts.get("max_running", -1)
    out["connections_process_max"] = peak["process"]
    out["connections_database_max"] = peak["database"]
    out["notify"] = _summary(notify)
    out["wake_idle"] = _summary(idle)
    out["wake_busy"] = _summary(loaded)
    out["busy"] = busy
    out["burst"] = burst
    out["burst_rate"] = round(burst / out["burst_s"], 1) if out["burst_s"] else 0.0
    say(
        f"  started and registered {out['registered']} agents in {out['startup_s']:.1f} s "
        f"({out['sessions']} session)"
    )
    say(
        f"  server connections: the process {peak['process']} at most "
        f"(target <= 40), the database {peak['database']} (with the bench's own 2)"
    )
    n = out["notify"]
    say(f"  bare NOTIFY round trip          p50 {n['p50']:7.3f}  p99 {n['p99']:7.3f} ms")
    for key, what in (("wake_idle", f"all {agents} idle"), ("wake_busy", f"{busy} busy")):
        w = out[key]
        say(
            f"  wake-up, {what:20s} p50 {w['p50']:7.3f}  p95 {w['p95']:7.3f}  "
            f"p99 {w['p99']:7.3f}  max {w['max']:7.1f} ms (target p99 <= 50)"
        )
    say(
        f"  burst of {burst}: drained in {out['burst_s']:.1f} s ({out['burst_rate']:.0f}/s), "
        f"up to {out['max_running']} running at once"
    )
    say(
        f"  claims {out['claims']} for {out['tasks']} tasks; double claims "
        f"{out['double_claims']}, handlers run twice {out['run_twice']}"
    )
    return out


# ------------------------------------------------------------- the consumer --


async def _consume(url: str, slots: int) -> None:
    import signal

    from agentos.kernel.models import TaskStatus
    from agentos.kernel.runtime import AgentHost, Work, host_pool_size

    runs: dict[int, int] = {}
    most = 0
    host: AgentHost

    async def handler(kernel: Kernel, work: Work) -> None:
        nonlocal most
        task = work.task
        assert task is not None
        runs[task.id] = runs.get(task.id, 0) + 1
        most = max(most, len(host.running))
        if task.title.startswith("wake"):
            print(f"claimed {task.id} {time.perf_counter_ns()}", flush=True)
            await host.finish(work, to=TaskStatus.done)
            print(f"done {task.id}", flush=True)
            return
        if task.title.startswith("hold"):
            await asyncio.sleep(float(task.title.split()[1]))
        else:
            await asyncio.sleep(random.uniform(0.0, 0.2))
        host.finish_soon(work, to=TaskStatus.done)

    settings = Settings(database_url=url, lease_seconds=30)  # type: ignore[arg-type]
    kernel = await Kernel(settings).open(min_size=1, max_size=host_pool_size(slots))
    host = AgentHost(
        kernel, role=ROLE, agents=[f"{ROLE}-{i}" for i in range(1, slots + 1)], handler=handler
    )
    runner = asyncio.create_task(host.run())
    await host.ready.wait()
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    host.stop()
    await runner
    await kernel.close()
    twice = sum(1 for n in runs.values() if n > 1)
    print(f"runs {sum(runs.values())} twice {twice} max_running {most}", flush=True)


def _main() -> None:
    ap = argparse.ArgumentParser(prog="python -m agentos.kernel.bench_scale")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("consume")
    c.add_argument("url")
    c.add_argument("slots", type=int)
    args = ap.parse_args()
    asyncio.run(_consume(args.url, args.slots))


if __name__ == "__main__":
    _main()
