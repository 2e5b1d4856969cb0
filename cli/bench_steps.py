"""`agentos bench steps`: the kernel's database time per agent step (issue 12).

A worker stage of N steps runs in this process exactly as `agentos agent run` runs one
(AgentRuntime.handle_task: the durable loop, the scripted model through litellm, the
real tools in a real git worktree), on a scratch database. A task titled `[steps=N]`
makes the scripted worker write one small file per turn, then commit and hand the task
to review: N + 2 LLM turns. A step is one turn: its budget reservation and LLM call
record, the reply, tool call and tool result in the transcript, and its activity row.

Two figures for the kernel's database time: the server's (pg_stat_database.active_time
of the scratch database over the stage: its statements and commits, WAL flushes
included, with no network or client in it), and the process's (Kernel.connection():
from asking the pool for a connection to handing it back committed, which includes the
round trips and whatever else the event loop ran meanwhile, litellm's bookkeeping
among it). Beside them, from the same run and the same server: a bare autocommitted
INSERT (which waits for its WAL flush like a kernel write) and `SELECT 1`.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import click
from agentos.cli.common import CONTEXT, echo_json, handle_errors, run, settings


async def measure(n_steps: int, samples: int, echo: Any) -> dict[str, Any]:
    """Run the N-step stage on a scratch database; returns the figures."""
    from agentos.agents.config import AgentSettings, load_role
    from agentos.agents.llm import ensure_litellm
    from agentos.agents.runner import AgentRuntime
    from agentos.agents.workspace import Workspace
    from agentos.kernel import bench as kbench
    from agentos.kernel import sessions, steps, tasks, views
    from agentos.kernel.db import Kernel
    from agentos.kernel.dispatch import Dispatcher
    from agentos.kernel.runtime import Work

    say = echo or (lambda _s: None)
    say(f"steps: one worker stage of {n_steps} scripted steps, in this process")
    out: dict[str, Any] = {"steps_asked": n_steps}
    await asyncio.to_thread(ensure_litellm)
    async with kbench.scratch_database(settings()) as url:
        base = await kbench.round_trips(url, samples)
        with tempfile.TemporaryDirectory(prefix="agentos-bench-steps-") as home:
            s = AgentSettings(
                database_url=url,  # type: ignore[arg-type]
                home=Path(home),
                demo=True,  # the scripted model
                lease_seconds=3600,  # nobody renews it here: the stage must not outlive it
            )
            role = load_role("worker", s)
            role = role.model_copy(
                update={"limits": role.limits.model_copy(update={"max_iterations": n_steps + 10})}
            )
            agent = "bench-worker"
            setup = await Kernel(s).open(min_size=1, max_size=2)
            try:
                async with setup.connection() as conn:
                    sid = await sessions.register_session(conn, role="worker", agents=[agent])
                    await tasks.create_task(
                        conn, title=f"[steps={n_steps}] write files", created_by="bench"
                    )
                d = await Dispatcher(setup, role="worker", session_id=sid).open()
                try:
                    claimed = await d.claim([agent])
                finally:
                    await d.close()
            finally:
                # its backends exit and report their statistics before the stage starts
                await setup.close()
            ((_, task),) = claimed.tasks
            active0 = await kbench.active_ms(url)
            kernel = await Kernel(s).open(min_size=1, max_size=4)
            try:
                workspace = await Workspace(
                    s.workspace_path, s.worktrees_path, None, kernel=kernel, base_branch=None
                ).ensure()
                runtime = AgentRuntime(kernel, s, role, workspace)
                db0, tx0, t0 = kernel.db_seconds, kernel.db_transactions, time.perf_counter()
                await runtime.handle_task(Work(agent=agent, task=task))
                wall = time.perf_counter() - t0
                db, tx = kernel.db_seconds - db0, kernel.db_transactions - tx0
            finally:
                await kernel.close()  # its backends report their active time on exit
            server_ms = await kbench.active_ms(url) - active0
            after_k = await Kernel(s).open(min_size=1, max_size=1)
            try:
                async with after_k.connection() as conn:
                    cost = await views.task_cost(conn, task.id)
                    rows = await steps.load(conn, task.id, "work")
                    after = await tasks.get_task(conn, task.id)
            finally:
                await after_k.close()
    turns = int(cost["calls"])
    out.update(
        {
            "status": str(after.status),
            "llm_turns": turns,
            "transcript_rows": len(rows),
            "stage_s": round(wall, 2),
            "db_s": round(db, 4),
            "db_ms_per_step": round(db * 1000 / turns, 3) if turns else None,
            "server_ms_per_step": round(server_ms / turns, 3) if turns else None,
            "transactions_per_step": round(tx / turns, 2) if turns else None,
            "insert_ms_p50": round(statistics.median(base["insert"]), 3),
            "select_ms_p50": round(statistics.median(base["select"]), 3),
        }
    )
    if turns:
        out["ratio_to_insert"] = round(out["db_ms_per_step"] / out["insert_ms_p50"], 2)
    say(
        f"  task {out['status']} after {turns} LLM turns ({len(rows)} transcript rows) "
        f"in {wall:.1f} s"
    )
    say(
        f"  server time per step            {out['server_ms_per_step']:8.3f} ms  "
        "(statements and commits, pg_stat_database.active_time; target <= 2 ms)"
    )
    say(
        f"  kernel database time per step   {out['db_ms_per_step']:8.3f} ms  "
        f"(seen by the process: {out['transactions_per_step']} transactions per step, "
        "round trips and waits on its event loop included)"
    )
    say(
        f"  bare INSERT round trip (p50)    {out['insert_ms_p50']:8.3f} ms  "
        f"(a step = {out.get('ratio_to_insert')}x)"
    )
    say(f"  SELECT 1 round trip (p50)       {out['select_ms_p50']:8.3f} ms")
    return out


@click.command("steps", context_settings=CONTEXT)
@click.option(
    "--steps",
    "n_steps",
    type=click.IntRange(1, 500),
    default=100,
    show_default=True,
    help="Scripted steps of the worker stage.",
)
@click.option(
    "--samples",
    type=click.IntRange(10, 100_000),
    default=200,
    show_default=True,
    help="Baseline round trips.",
)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def bench_steps(n_steps: int, samples: int, as_json: bool) -> None:
    """The kernel's database time per agent step beside a bare INSERT round trip."""
    result = run(measure(n_steps, samples, None if as_json else click.echo))
    if as_json:
        echo_json(result)
