"""Recurring tasks: a schedule with a task template creates one task per tick, cluster-wide.

Real PostgreSQL throughout; the race is between separate OS processes, each with its own
connections, firing the same ticks at the same instants.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from agentos.kernel import errors, schedules
from agentos.kernel.db import Kernel
from agentos.kernel.duties import KernelDuties

BASE = dt.datetime(2031, 3, 1, 9, 0, tzinfo=dt.UTC)  # a minute boundary: ticks are BASE + i min


async def _rows(kernel: Kernel, sql: str) -> list[dict[str, Any]]:
    async with kernel.connection() as conn:
        return list(await (await conn.execute(sql)).fetchall())


async def test_each_tick_creates_one_task_from_the_template(kernel: Kernel) -> None:
    async with kernel.connection() as conn:
        sc = await schedules.add_schedule(
            conn,
            name="nightly-triage",
            cron="* * * * *",
            role="orchestrator",
            task={
                "title": "Triage the failed tasks",
                "description": "look at every failed task",
                "acceptance": "each one retried or explained",
                "priority": 7,
                "budget_usd": 2.5,
            },
            now=BASE - dt.timedelta(seconds=30),
        )
    assert sc.activation == "task" and sc.target_role == "orchestrator"
    assert sc.task_template == {
        "title": "Triage the failed tasks",
        "description": "look at every failed task",
        "acceptance": "each one retried or explained",
        "role": "orchestrator",
        "priority": 7,
        "budget_usd": 2.5,
        "max_attempts": 3,
    }
    assert sc.next_fire_at == BASE

    assert await schedules.fire_due(kernel, now=BASE - dt.timedelta(seconds=1)) == []
    assert await schedules.fire_due(kernel, now=BASE + dt.timedelta(seconds=5)) == [
        ("nightly-triage", True)
    ]
    assert await schedules.fire_due(kernel, now=BASE + dt.timedelta(seconds=6)) == []
    tasks = await _rows(kernel, "SELECT * FROM agentos.tasks ORDER BY id")
    assert len(tasks) == 1
    t = tasks[0]
    assert (t["title"], t["role"], t["priority"], t["status"]) == (
        "Triage the failed tasks",
        "orchestrator",
        7,
        "inbox",
    )
    assert t["description"] == "look at every failed task"
    assert float(t["budget_usd"]) == 2.5
    assert t["created_by"] == "schedule:nightly-triage"
    assert t["metadata"] == {"schedule": "nightly-triage", "tick": BASE.isoformat()}
    # the task's own work is queued (the insert's trigger), no activation besides it
    jobs = await _rows(kernel, "SELECT entrypoint, dedupe_key FROM agentos.pgqueuer")
    assert jobs == [{"entrypoint": "role:orchestrator", "dedupe_key": f"task:{t['id']}"}]
    runs = await _rows(kernel, "SELECT tick, fired, job_id, task_id FROM agentos.schedule_runs")
    assert runs == [{"tick": BASE, "fired": True, "job_id": None, "task_id": t["id"]}]
    acts = await _rows(
        kernel,
        "SELECT kind, actor, task_id, message FROM agentos.activities "
        "WHERE kind IN ('task.created', 'schedule.fired') ORDER BY id",
    )
    assert [(a["kind"], a["actor"], a["task_id"]) for a in acts] == [
        ("task.created", "schedule:nightly-triage", t["id"]),
        ("schedule.fired", "kernel", t["id"]),
    ]
    assert acts[1]["message"] == f"nightly-triage: created task #{t['id']} Triage the failed tasks"

    # the next tick makes the next task; ticks missed meanwhile collapse into one
    fired = await schedules.fire_due(kernel, now=BASE + dt.timedelta(minutes=5, seconds=1))
    assert fired == [("nightly-triage", True)]
    tasks = await _rows(kernel, "SELECT metadata FROM agentos.tasks ORDER BY id")
    assert [m["metadata"]["tick"] for m in tasks] == [
        BASE.isoformat(),
        (BASE + dt.timedelta(minutes=1)).isoformat(),
    ]


async def test_a_tick_already_fired_never_creates_a_second_task(kernel: Kernel) -> None:
    async with kernel.connection() as conn:
        await schedules.add_schedule(
            conn,
            name="daily",
            cron="* * * * *",
            task={"title": "Daily report"},
            now=BASE - dt.timedelta(seconds=30),
        )
    assert await schedules.fire_due(kernel, now=BASE + dt.timedelta(seconds=1)) == [("daily", True)]
    # psql (or a leader that overlapped) puts the schedule back on the tick it fired
    async with kernel.connection() as conn:
        await conn.execute("UPDATE agentos.schedules SET next_fire_at = %s", (BASE,))
    assert await schedules.fire_due(kernel, now=BASE + dt.timedelta(seconds=2)) == []
    assert len(await _rows(kernel, "SELECT id FROM agentos.tasks")) == 1
    nxt = await _rows(kernel, "SELECT next_fire_at FROM agentos.schedules")
    assert nxt == [{"next_fire_at": BASE + dt.timedelta(minutes=1)}]


async def test_the_task_and_the_tick_commit_together(kernel: Kernel) -> None:
    """A failure after the task insert (here: advancing the schedule) leaves no task, no
    run and the tick still due; once the failure is gone the tick fires once."""
    async with kernel.connection() as conn:
        await schedules.add_schedule(
            conn,
            name="weekly",
            cron="* * * * *",
            task={"title": "Weekly cleanup"},
            now=BASE - dt.timedelta(seconds=30),
        )
        await conn.execute(
            "CREATE FUNCTION public.refuse_advance() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'no advancing today'; END $$"
        )
        await conn.execute(
            "CREATE TRIGGER refuse_advance BEFORE UPDATE OF next_fire_at ON agentos.schedules "
            "FOR EACH ROW EXECUTE FUNCTION public.refuse_advance()"
        )
    with pytest.raises(errors.KernelError, match="no advancing today"):
        await schedules.fire_due(kernel, now=BASE + dt.timedelta(seconds=1))
    assert await _rows(kernel, "SELECT id FROM agentos.tasks") == []
    assert await _rows(kernel, "SELECT tick FROM agentos.schedule_runs") == []
    assert await _rows(kernel, "SELECT id FROM agentos.pgqueuer") == []
    assert await _rows(kernel, "SELECT id FROM agentos.activities WHERE kind LIKE 'task.%'") == []
    async with kernel.connection() as conn:
        await conn.execute("DROP TRIGGER refuse_advance ON agentos.schedules")
    assert await schedules.fire_due(kernel, now=BASE + dt.timedelta(seconds=2)) == [
        ("weekly", True)
    ]
    assert len(await _rows(kernel, "SELECT id FROM agentos.tasks")) == 1


async def test_a_refused_template_skips_the_tick_and_the_others_still_fire(
    kernel: Kernel,
) -> None:
    async with kernel.connection() as conn:
        await conn.execute("INSERT INTO agentos.agents (name, role) VALUES ('worker-9', 'worker')")
        await schedules.add_schedule(
            conn,
            name="a-assigned",
            cron="* * * * *",
            agent="worker-9",
            task={"title": "For worker-9"},
            now=BASE - dt.timedelta(seconds=30),
        )
        await schedules.add_schedule(
            conn,
            name="b-plain",
            cron="* * * * *",
            task={"title": "For anyone"},
            now=BASE - dt.timedelta(seconds=30),
        )
        # what psql can store past the add-time checks: a priority the kernel refuses
        await conn.execute(
            "UPDATE agentos.schedules SET task_template = task_template || "
            "'{\"priority\": 5000}' WHERE name = 'a-assigned'"
        )
    fired = await schedules.fire_due(kernel, now=BASE + dt.timedelta(seconds=1))
    assert sorted(fired) == [("a-assigned", False), ("b-plain", True)]
    tasks = await _rows(kernel, "SELECT title FROM agentos.tasks")
    assert tasks == [{"title": "For anyone"}]
    runs = await _rows(
        kernel,
        "SELECT s.name, r.fired, r.task_id IS NOT NULL AS has_task FROM agentos.schedule_runs r "
        "JOIN agentos.schedules s ON s.id = r.schedule_id ORDER BY s.name",
    )
    assert runs == [
        {"name": "a-assigned", "fired": False, "has_task": False},
        {"name": "b-plain", "fired": True, "has_task": True},
    ]
    err = await _rows(
        kernel, "SELECT message FROM agentos.activities WHERE kind = 'schedule.task_error'"
    )
    assert len(err) == 1
    assert err[0]["message"].startswith("a-assigned: the task could not be created, tick skipped")
    assert "priority" in err[0]["message"]
    enabled = await _rows(kernel, "SELECT bool_and(enabled) AS on FROM agentos.schedules")
    assert enabled == [{"on": True}]

    # an assigned template goes to its agent
    async with kernel.connection() as conn:
        await conn.execute(
            "UPDATE agentos.schedules SET task_template = task_template - 'priority' "
            "WHERE name = 'a-assigned'"
        )
    await schedules.fire_due(kernel, now=BASE + dt.timedelta(minutes=1, seconds=1))
    assigned = await _rows(
        kernel, "SELECT assignee, role, status FROM agentos.tasks WHERE title = 'For worker-9'"
    )
    assert assigned == [{"assignee": "worker-9", "role": "worker", "status": "assigned"}]


async def test_bad_templates_are_refused_with_nothing_stored(kernel: Kernel) -> None:
    cases: list[tuple[dict[str, Any], dict[str, Any], str]] = [
        ({"title": ""}, {}, "title: String should have at least 1 character"),
        ({"title": "x", "priority": 5000}, {}, "priority"),
        ({"title": "x", "budget_usd": float("nan")}, {}, "budget_usd"),
        ({"title": "x", "budget_usd": 0}, {}, "budget_usd"),
        ({"title": "x", "parent_id": 1}, {}, "no field 'parent_id'"),
        ({"title": "x"}, {"role": "Bad Role"}, "bad role name"),
        ({"title": "x"}, {"activation": "plan"}, "--activation does not go with --task"),
        ({"title": "x"}, {"agent": "ghost"}, "no agent 'ghost'"),
        ({"title": "bell\x07"}, {}, "title: contains"),
    ]
    async with kernel.connection() as conn:
        for task, extra, needle in cases:
            with pytest.raises(errors.BadInput, match=needle.replace("(", r"\(")):
                await schedules.add_schedule(conn, name="x", cron="0 9 * * 1", task=task, **extra)
        assert await schedules.list_schedules(conn) == []


RACER = r"""
import asyncio, datetime as dt, json, sys, time
from agentos.kernel import schedules
from agentos.kernel.db import Kernel
from agentos.kernel.settings import Settings

async def main(base: dt.datetime, ticks: int, start: float, every: float) -> None:
    kernel = Kernel(Settings())
    await kernel.open(min_size=1, max_size=2)
    won = []
    try:
        for i in range(ticks):
            # every racer wakes at the same instant for tick i
            await asyncio.sleep(max(0.0, start + i * every - time.time()))
            now = base + dt.timedelta(minutes=i, seconds=30)
            won += [i for _name, fired in await schedules.fire_due(kernel, now=now) if fired]
    finally:
        await kernel.close()
    print(json.dumps(won))

base = dt.datetime.fromisoformat(sys.argv[1])
asyncio.run(main(base, int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])))
"""


def test_schedulers_racing_in_separate_processes_create_one_task_per_tick(
    db_url: str, tmp_path: Path
) -> None:
    ticks, racers, every = 25, 3, 0.12
    with psycopg.connect(db_url, autocommit=True) as conn:
        # the same row `agentos schedule add --task` stores (its tick after BASE - 30 s)
        conn.execute(
            "INSERT INTO agentos.schedules (name, cron, target_role, activation, "
            "task_template, next_fire_at) VALUES ('racy', '* * * * *', 'worker', 'task', %s, %s)",
            (json.dumps({"title": "Recurring", "role": "worker", "max_attempts": 3}), BASE),
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_")}
    env.update(AGENTOS_DATABASE_URL=db_url, AGENTOS_HOME=str(tmp_path / "home"))
    start = time.time() + 3.0  # all processes are up and connected by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, BASE.isoformat(), str(ticks), str(start), str(every)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(racers)
    ]
    won: list[list[int]] = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        won.append(json.loads(out))
    # every tick was fired by exactly one of the processes
    assert sorted(i for w in won for i in w) == list(range(ticks)), won
    with psycopg.connect(db_url) as conn:
        created = conn.execute(
            "SELECT metadata->>'tick' AS tick, count(*) AS n FROM agentos.tasks "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
        runs = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE fired AND task_id IS NOT NULL) "
            "FROM agentos.schedule_runs"
        ).fetchone()
        orphans = conn.execute(
            "SELECT count(*) FROM agentos.tasks t WHERE NOT EXISTS "
            "(SELECT 1 FROM agentos.schedule_runs r WHERE r.task_id = t.id)"
        ).fetchone()
    expected = [(BASE + dt.timedelta(minutes=i)).isoformat() for i in range(ticks)]
    assert [r[0] for r in created] == sorted(expected)
    assert {r[1] for r in created} == {1}
    assert runs == (ticks, ticks)
    assert orphans == (0,)
    print(f"ticks won per process: {[len(w) for w in won]}")


async def test_two_leaders_duty_loops_fire_a_due_tick_once(kernel: Kernel, settings) -> None:  # type: ignore[no-untyped-def]
    """Two processes' kernel duties (leader election, then the tick) on one due tick."""
    async with kernel.connection() as conn:
        await schedules.add_schedule(
            conn,
            name="standup",
            cron="* * * * *",
            task={"title": "Write the standup notes"},
            now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2),
        )
    other = await Kernel(settings).open(min_size=1, max_size=4)
    loops = [KernelDuties(k, uuid.uuid4(), interval=0.1) for k in (kernel, other)]
    runs = [asyncio.create_task(d.run()) for d in loops]
    try:
        # leadership moves mid-way: the first leader resigns, the other takes over
        await asyncio.sleep(1.0)
        loops[0].stop()
        await runs[0]
        await asyncio.sleep(1.5)
    finally:
        loops[1].stop()
        await asyncio.gather(*runs)
        await other.close()
    rows = await _rows(kernel, "SELECT title, created_by FROM agentos.tasks")
    assert rows == [{"title": "Write the standup notes", "created_by": "schedule:standup"}]


def test_schedule_commands_for_recurring_tasks(run_cli, cli_env, db_url: str) -> None:  # type: ignore[no-untyped-def]
    r = run_cli(
        "schedule",
        "add",
        "triage",
        "0 9 * * 1-5",
        "--task",
        "Triage yesterday's failures",
        "--role",
        "orchestrator",
        "--priority",
        "5",
        "--budget",
        "2",
        "--description",
        "-",
        "--json",
        input="every failed task: retry it or say why not\n",
    )
    assert r.returncode == 0, r.stderr
    added = json.loads(r.stdout)
    assert added["activation"] == "task" and added["target_role"] == "orchestrator"
    assert added["task_template"] == {
        "title": "Triage yesterday's failures",
        "description": "every failed task: retry it or say why not\n",
        "acceptance": "",
        "role": "orchestrator",
        "priority": 5,
        "budget_usd": 2.0,
        "max_attempts": 3,
    }
    r = run_cli("schedule", "add", "beat", "*/5 * * * *", "--role", "worker")
    assert r.returncode == 0, r.stderr
    listed = run_cli("schedule", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("beat ") and "heartbeat -> role worker" in lines[0]
    assert lines[1].startswith("triage ")
    assert (
        '0 9 * * 1-5     task "Triage yesterday\'s failures" (p5, $2, described) '
        "-> role orchestrator; next " in lines[1]
    ), lines[1]
    as_json = json.loads(run_cli("schedule", "list", "--json").stdout)
    assert [s["task_template"] is not None for s in as_json] == [False, True]

    # the tick comes (here: moved to now by psql), the leader's duties fire it
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE agentos.schedules SET next_fire_at = now() - interval '1 second' "
            "WHERE name = 'triage'"
        )
    r = subprocess.run(
        [sys.executable, "-c", DUTIES_ONCE],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    shown = json.loads(run_cli("task", "list", "--json").stdout)
    assert [(t["title"], t["role"], t["priority"], t["status"]) for t in shown] == [
        ("Triage yesterday's failures", "orchestrator", 5, "inbox")
    ]
    log = run_cli("log", "--json")
    kinds = [json.loads(ln)["kind"] for ln in log.stdout.splitlines()]
    assert "schedule.fired" in kinds and "task.created" in kinds
    r = run_cli("schedule", "remove", "triage")
    assert r.returncode == 0 and r.stdout == "removed schedule triage\n", r.stderr
    assert [s["name"] for s in json.loads(run_cli("schedule", "list", "--json").stdout)] == ["beat"]


def test_bad_recurring_tasks_are_one_line_errors_and_store_nothing(run_cli, db_url: str) -> None:  # type: ignore[no-untyped-def]
    cases = [
        (("schedule", "add", "x", "every day", "--task", "t"), "bad cron"),
        (("schedule", "add", "x", "0 0 31 2 *", "--task", "t"), "never fires"),
        (
            ("schedule", "add", "x", "0 9 * * *", "--task", "t", "--role", "workr"),
            "unknown role 'workr'",
        ),
        (
            ("schedule", "add", "x", "0 9 * * *", "--task", "t", "--role", "Bad Role"),
            "bad role name",
        ),
        (
            ("schedule", "add", "x", "0 9 * * *", "--task", "t", "--agent", "ghost"),
            "no agent 'ghost'",
        ),
        (("schedule", "add", "x", "0 9 * * *", "--task", ""), "title"),
        (("schedule", "add", "x", "0 9 * * *", "--task", "t", "--budget", "nan"), "finite"),
        (("schedule", "add", "x", "0 9 * * *", "--task", "t", "--budget", "0"), "above 0"),
        (("schedule", "add", "x", "0 9 * * *", "--task", "t", "--priority", "5000"), "5000"),
        (
            ("schedule", "add", "x", "0 9 * * *", "--task", "t", "--activation", "plan"),
            "--activation does not go with --task",
        ),
        (
            ("schedule", "add", "x", "0 9 * * *", "--role", "worker", "--priority", "3"),
            "--priority goes with --task",
        ),
        (
            ("schedule", "add", "x", "0 9 * * *", "--task", "t", "-d", "-", "-a", "-"),
            "only one of --description and --acceptance",
        ),
    ]
    for args, needle in cases:
        r = run_cli(*args, input="")
        assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
        assert r.stderr.startswith("error: ") and len(r.stderr.splitlines()) == 1, (args, r.stderr)
        assert needle in r.stderr, (args, r.stderr)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM agentos.schedules").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM agentos.tasks").fetchone() == (0,)


DUTIES_ONCE = r"""
import asyncio, uuid
from agentos.kernel.db import Kernel
from agentos.kernel.duties import KernelDuties
from agentos.kernel.settings import Settings

async def main() -> None:
    kernel = await Kernel(Settings()).open(min_size=1, max_size=2)
    try:
        duties = KernelDuties(kernel, uuid.uuid4())
        assert await duties.leadership.tick()
        done = await duties.run_once()
        assert done["schedules"] == 1, done
        await duties.leadership.release()
    finally:
        await kernel.close()

asyncio.run(main())
"""
