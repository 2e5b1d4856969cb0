"""Schedules fire each tick exactly once across processes; one leader per duty."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid

import pytest
from agentos.kernel import errors, schedules
from agentos.kernel.db import Kernel
from agentos.kernel.leader import Leadership


async def test_each_tick_fires_exactly_once_across_concurrent_firers(
    kernel: Kernel, settings
) -> None:  # type: ignore[no-untyped-def]
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)
    async with kernel.connection() as conn:
        await schedules.add_schedule(
            conn, name="beat", cron="* * * * *", role="orchestrator", now=past
        )
    others = [await Kernel(settings).open(min_size=1, max_size=2) for _ in range(4)]
    try:
        results = await asyncio.gather(*(schedules.fire_due(k) for k in [kernel, *others]))
    finally:
        for k in others:
            await k.close()
    fired = [r for batch in results for r in batch]
    assert fired == [("beat", True)]  # missed ticks collapse into one firing
    async with kernel.connection() as conn:
        runs = await (await conn.execute("SELECT * FROM agentos.schedule_runs")).fetchall()
        jobs = await (
            await conn.execute(
                "SELECT entrypoint, convert_from(payload, 'UTF8') AS p FROM agentos.pgqueuer"
            )
        ).fetchall()
        nxt = await (await conn.execute("SELECT next_fire_at FROM agentos.schedules")).fetchone()
    assert len(runs) == 1
    assert [j["entrypoint"] for j in jobs] == ["role:orchestrator"]
    assert json.loads(jobs[0]["p"])["kind"] == "heartbeat"
    assert nxt is not None and nxt["next_fire_at"] > dt.datetime.now(dt.UTC)
    assert await schedules.fire_due(kernel) == []


async def test_a_false_precondition_costs_nothing(kernel: Kernel) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    async with kernel.connection() as conn:
        await schedules.add_schedule(
            conn,
            name="idle",
            cron="* * * * *",
            role="worker",
            now=past,
            precondition="EXISTS (SELECT 1 FROM agentos.messages WHERE read_at IS NULL)",
        )
    assert await schedules.fire_due(kernel) == [("idle", False)]
    async with kernel.connection() as conn:
        row = await (await conn.execute("SELECT count(*) AS c FROM agentos.pgqueuer")).fetchone()
    assert row is not None and row["c"] == 0


async def test_bad_schedules_are_refused(kernel: Kernel) -> None:
    async with kernel.connection() as conn:
        with pytest.raises(errors.BadInput, match="bad cron"):
            await schedules.add_schedule(conn, name="x", cron="every tuesday", role="worker")
        with pytest.raises(errors.BadInput, match="exactly one"):
            await schedules.add_schedule(conn, name="x", cron="* * * * *")
        with pytest.raises(errors.BadInput, match="bad precondition"):
            await schedules.add_schedule(
                conn, name="x", cron="* * * * *", role="worker", precondition="no_such_column > 1"
            )
        with pytest.raises(errors.BadInput, match="never fires"):
            await schedules.add_schedule(conn, name="x", cron="0 0 31 2 *", role="worker")
        with pytest.raises(errors.BadInput, match="no agent 'ghost'"):
            await schedules.add_schedule(conn, name="x", cron="* * * * *", agent="ghost")
        with pytest.raises(errors.BadInput, match="not one expression"):
            await schedules.add_schedule(
                conn,
                name="x",
                cron="* * * * *",
                role="worker",
                precondition="true) IS TRUE; DROP TABLE agentos.tasks; SELECT (true",
            )
        assert await schedules.list_schedules(conn) == []


async def test_a_precondition_runs_read_only_at_every_tick(kernel: Kernel) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    async with kernel.connection() as conn:
        await schedules.add_schedule(
            conn, name="w", cron="* * * * *", role="worker", now=past, precondition="true"
        )
        # what psql (or a later edit) can store past the add-time check
        await conn.execute(
            "UPDATE agentos.schedules SET precondition = "
            "'(SELECT count(*) FROM agentos.tasks) >= 0 AND "
            "(SELECT true FROM (SELECT setval(''agentos.tasks_id_seq'', 1000)) s)'"
        )
    assert await schedules.fire_due(kernel) == [("w", False)]
    async with kernel.connection() as conn:
        row = await (await conn.execute("SELECT last_value FROM agentos.tasks_id_seq")).fetchone()
    assert row is not None and row["last_value"] != 1000


async def test_exactly_one_leader_and_a_clean_handover(kernel: Kernel) -> None:
    a = Leadership(kernel, "kernel", uuid.uuid4(), ttl=5)
    b = Leadership(kernel, "kernel", uuid.uuid4(), ttl=5)
    assert await a.tick() is True
    assert await b.tick() is False
    assert await a.tick() is True  # renewal
    await a.release()
    assert await b.tick() is True
    assert await a.tick() is False


async def test_a_dead_leader_is_replaced_after_its_ttl(kernel: Kernel) -> None:
    a = Leadership(kernel, "kernel", uuid.uuid4(), ttl=5)
    b = Leadership(kernel, "kernel", uuid.uuid4(), ttl=5)
    assert await a.tick()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=6)
    assert await b.tick(now=later) is True
    assert await a.tick(now=later) is False
