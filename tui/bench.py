"""Mission control at size: start-up and update latency with 10,000 tasks, 100,000 activities.

    python -m agentos.tui.bench [--tasks 10000] [--activities 100000] [--samples 30]
                                [--size 80x24] [--json]

On the configured server (AGENTOS_DATABASE_URL, else the embedded one) it creates a
scratch database, migrates it, fills it (triggers off, so the fill is quick; needs a
superuser, as the embedded server's is), and drops it afterwards. The App runs headless
(`App.run_test`) in this process, exactly as the tests drive it, with its service
thread and its own connections; the writes come from another connection.

* start-up: from constructing the App to the first complete screen (header, agents,
  board and feed rendered), three runs;
* update latency: a task committed from another connection (autocommit: the clock starts
  when the INSERT returns, i.e. after the commit) until the board widget holds its card,
  without any key press; samples spaced 200 ms apart so each pays the whole path, the
  first three not counted (warm-up), each probe deleted after so the next is again the
  first card of the inbox column (visible even at 80x24);
* task screen: Enter on a task with 2,000 transcript steps until its detail is rendered;
* each part's loader (queries, decoding, snapshot) alone, and as timed inside the app.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from agentos.kernel.bench import scratch_database
from agentos.kernel.settings import Settings

WARMUP = 3  # first probes not counted: the screen is still settling after start-up
STATUSES = (
    # status, share of tasks
    ("done", 0.60),
    ("inbox", 0.15),
    ("assigned", 0.05),
    ("in_progress", 0.05),
    ("review", 0.05),
    ("blocked", 0.04),
    ("failed", 0.04),
    ("cancelled", 0.02),
)

FILL_SQL = [
    "SET session_replication_role = replica",
    """INSERT INTO agentos.agent_sessions (role, host, pid, agents)
       SELECT CASE WHEN g <= 2 THEN 'reviewer' ELSE 'worker' END, 'bench', g, '{}'
       FROM generate_series(1, 20) g""",
    """INSERT INTO agentos.agents (name, role, status, session_id, last_heartbeat)
       SELECT 'agent-' || s.pid, s.role, 'idle', s.id, now() FROM agentos.agent_sessions s""",
    """INSERT INTO agentos.tasks (title, description, status, priority, role, assignee,
                                 created_by, created_at, updated_at, completed_at,
                                 lease_agent, lease_token, lease_expires_at)
       SELECT 'Task ' || g || ': ' || md5(g::text), repeat('words ', 40),
              st.status::agentos.task_status, (g %% 7) - 3, 'worker',
              CASE WHEN st.status = 'assigned' THEN 'agent-' || (3 + g %% 18) END,
              'bench', now() - g * interval '1 minute', now() - g * interval '30 seconds',
              CASE WHEN st.status IN ('done', 'failed', 'cancelled')
                   THEN now() - g * interval '20 seconds' END,
              CASE WHEN st.status IN ('in_progress') THEN 'agent-' || (3 + g %% 18) END,
              CASE WHEN st.status IN ('in_progress') THEN gen_random_uuid() END,
              CASE WHEN st.status IN ('in_progress') THEN now() + interval '1 hour' END
       FROM generate_series(1, %(tasks)s) g
       CROSS JOIN LATERAL (
           SELECT status FROM unnest(%(statuses)s::text[], %(cum)s::float8[]) AS s(status, upto)
           WHERE (g::float8 / %(tasks)s) <= upto ORDER BY upto LIMIT 1) st""",
    """INSERT INTO agentos.activities (created_at, kind, actor, task_id, message)
       SELECT now() - (%(activities)s - g) * interval '1 second',
              (ARRAY['task.created', 'task.in_progress', 'task.review', 'task.done',
                     'message.sent'])[1 + g %% 5],
              'agent-' || (1 + g %% 20), 1 + g %% %(tasks)s, 'activity ' || g
       FROM generate_series(1, %(activities)s) g""",
    """INSERT INTO agentos.llm_calls (created_at, agent, role, task_id, model, prompt_tokens,
                                      completion_tokens, cost_usd, latency_ms, outcome)
       SELECT now() - g * interval '3 seconds', 'agent-' || (1 + g %% 20), 'worker',
              1 + g %% %(tasks)s, 'bench-model', 1000, 200, 0.002, 800, 'ok'
       FROM generate_series(1, 20000) g""",
    """INSERT INTO agentos.steps (task_id, stage, seq, agent, kind, content)
       SELECT %(deep)s, 'work', g, 'agent-3',
              (ARRAY['llm', 'tool_call', 'tool_result'])[1 + g %% 3],
              jsonb_build_object('content', repeat('step ' || g || ' ', 20))
       FROM generate_series(0, 1999) g""",
    "SET session_replication_role = origin",
    "ANALYZE",
]


def _cumulative() -> tuple[list[str], list[float]]:
    names, cum, total = [], [], 0.0
    for name, share in STATUSES:
        total += share
        names.append(name)
        cum.append(total)
    cum[-1] = 1.0
    return names, cum


async def fill(url: str, tasks: int, activities: int) -> float:
    """Fill the scratch database; returns seconds taken."""
    names, cum = _cumulative()
    params = {
        "tasks": tasks,
        "activities": activities,
        "statuses": names,
        "cum": cum,
        "deep": tasks // 2,
    }
    t0 = time.perf_counter()
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    try:
        for statement in FILL_SQL:
            await conn.execute(statement, params if "%(" in statement else None)
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('agentos.tasks', 'id'), %s)", (tasks,)
        )
    finally:
        await conn.close()
    return time.perf_counter() - t0


def _pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50": round(_pct(samples, 50), 2),
        "p95": round(_pct(samples, 95), 2),
        "max": round(max(samples), 2),
        "mean": round(statistics.fmean(samples), 2),
        "n": len(samples),
    }


async def measure(
    settings: Settings, url: str, *, samples: int, size: tuple[int, int], tasks: int
) -> dict[str, Any]:
    """Start-up, update latency and task-screen times against a filled database."""
    from agentos.tui.app import MissionControl
    from agentos.tui.board import Board
    from agentos.tui.task_screen import TaskScreen

    async def until(pilot: Any, condition: Any, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("bench: condition not met")
            await pilot.pause(0.001)

    def complete(app: MissionControl) -> bool:
        from agentos.tui.activity_feed import ActivityFeed
        from agentos.tui.agents_panel import AgentsPanel

        return (
            app.header_stats is not None
            and app.query_one(Board).snapshot is not None
            and app.query_one(ActivityFeed).snapshot is not None
            and app.query_one(AgentsPanel).snapshot is not None
        )

    startup: list[float] = []
    for _ in range(3):
        t0 = time.perf_counter()
        app = MissionControl(settings, url=url, tick_interval=0)
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda app=app: complete(app))
            startup.append((time.perf_counter() - t0) * 1000)

    app = MissionControl(settings, url=url, tick_interval=0)
    seen: dict[int, float] = {}

    def observe(board: Any) -> None:
        now = time.perf_counter()
        for column in board.columns:
            for card in column.cards:
                seen.setdefault(card.id, now)

    app.board_observers.append(observe)
    latencies: list[float] = []
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: complete(app))
        timings = {k: round(v * 1000, 2) for k, v in app.service.timings.items()}
        writer = await psycopg.AsyncConnection.connect(url, autocommit=True)
        try:
            for i in range(samples + WARMUP):
                await asyncio.sleep(0.2)
                cur = await writer.execute(
                    "INSERT INTO agentos.tasks (title, priority, created_by) "
                    "VALUES (%s, 1000, 'bench') RETURNING id",
                    (f"latency probe {i}",),
                )
                committed = time.perf_counter()
                row = await cur.fetchone()
                assert row is not None
                tid = row[0]
                await until(pilot, lambda tid=tid: tid in seen)
                if i >= WARMUP:
                    latencies.append((seen[tid] - committed) * 1000)
                # gone again, so the next probe is also the first card of its column
                await writer.execute("DELETE FROM agentos.tasks WHERE id = %s", (tid,))
        finally:
            await writer.close()
        deep = tasks // 2
        t0 = time.perf_counter()
        app.open_task(deep)
        await until(
            pilot,
            lambda: isinstance(app.screen, TaskScreen) and app.screen.detail is not None,
        )
        task_screen = (time.perf_counter() - t0) * 1000
        task_query = round(app.service.timings.get("task", 0) * 1000, 2)
    return {
        "size": f"{size[0]}x{size[1]}",
        "startup_ms": _summary(startup),
        "update_ms": _summary(latencies),
        "update_samples_ms": [round(x, 1) for x in latencies],
        "task_screen_ms": round(task_screen, 1),
        "in_app_ms": {**timings, "task": task_query},
    }


async def loader_times(settings: Settings, url: str, task_id: int) -> dict[str, float]:
    """Each part's loader alone (median of 5, ms): the database's share of an update."""
    from agentos.kernel.db import Kernel
    from agentos.tui import loaders
    from agentos.tui.clock import system_clock
    from agentos.tui.model import COLUMN_KEYS

    limits = dict.fromkeys(COLUMN_KEYS, loaders.PAGE)
    parts: dict[str, Callable[[Any], Awaitable[object]]] = {
        "header": lambda conn: loaders.load_header(conn, system_clock()),
        "agents": lambda conn: loaders.load_agents(conn, system_clock()),
        "board": lambda conn: loaders.load_board(conn, None, limits),
        "feed": lambda conn: loaders.load_feed(conn, None),
        "task": lambda conn: loaders.load_task(conn, task_id),
    }
    kernel = Kernel(settings, url=url)
    await kernel.open(min_size=1, max_size=2)
    out: dict[str, float] = {}
    try:
        for name, load in parts.items():
            runs = []
            for _ in range(5):
                t0 = time.perf_counter()
                async with kernel.connection() as conn:
                    await load(conn)
                runs.append((time.perf_counter() - t0) * 1000)
            out[name] = round(statistics.median(runs), 2)
    finally:
        await kernel.close()
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Fill a scratch database and measure."""
    settings = Settings()
    width, height = (int(x) for x in args.size.lower().split("x"))
    async with scratch_database(settings) as url:
        filled = await fill(url, args.tasks, args.activities)
        if not args.json:
            print(
                f"filled {args.tasks:,} tasks, {args.activities:,} activities, 20,000 LLM calls, "
                f"2,000 steps in {filled:.1f} s",
                flush=True,
            )
        result = await measure(
            settings, url, samples=args.samples, size=(width, height), tasks=args.tasks
        )
        result["loader_ms"] = await loader_times(settings, url, args.tasks // 2)
    result.update(tasks=args.tasks, activities=args.activities)
    return result


def main(argv: list[str] | None = None) -> None:
    """python -m agentos.tui.bench"""
    parser = argparse.ArgumentParser(prog="python -m agentos.tui.bench", description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--activities", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--size", default="80x24", help="terminal size, e.g. 80x24 or 160x48")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(result))
        return
    s, u = result["startup_ms"], result["update_ms"]
    print(f"screen {result['size']}")
    print(f"start-up to full screen: p50 {s['p50']} ms, max {s['max']} ms ({s['n']} runs)")
    print(
        f"task committed -> card on the board: p50 {u['p50']} ms, p95 {u['p95']} ms, "
        f"max {u['max']} ms ({u['n']} samples)"
    )
    print(f"task screen with 2,000 steps: {result['task_screen_ms']} ms")
    print(
        "loader alone, per part (ms): "
        + ", ".join(f"{k} {v}" for k, v in result["loader_ms"].items())
    )
    print(
        "loader inside the app, last run (ms, wall time, shares the GIL with rendering): "
        + ", ".join(f"{k} {v}" for k, v in result["in_app_ms"].items())
    )


if __name__ == "__main__":
    main()
