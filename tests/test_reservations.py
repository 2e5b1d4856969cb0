"""Budget reservations end with their holder: lease, session, or time (issue 8, part 5).

A process that dies between reserving before an LLM call and settling after it used to
leave the estimate reserved on the task and on the agent's day for ever.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal

import pytest
from agentos.kernel import errors, sessions, tasks, usage
from agentos.kernel.db import Kernel
from agentos.kernel.dispatch import Dispatcher
from agentos.kernel.duties import KernelDuties
from agentos.sql import query

# the reaper judges liveness at this time: every running session is past its leases
_AN_HOUR_ON = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)


async def _reserved(kernel: Kernel) -> dict[str, Decimal]:
    async with kernel.connection() as conn:
        rows = await (
            await conn.execute("SELECT scope, reserved_usd, spent_usd FROM agentos.budgets")
        ).fetchall()
    return {r["scope"]: r["reserved_usd"] for r in rows}


async def _spent(kernel: Kernel, scope: str) -> Decimal:
    async with kernel.connection() as conn:
        row = await (
            await conn.execute("SELECT spent_usd FROM agentos.budgets WHERE scope = %s", (scope,))
        ).fetchone()
    assert row is not None
    return Decimal(row["spent_usd"])


async def test_a_dead_holders_reservation_is_returned_by_the_rescue_of_its_lease(
    kernel: Kernel,
) -> None:
    async with kernel.connection() as conn:
        sid = await sessions.register_session(conn, role="worker", agents=["spender"])
        t = await tasks.create_task(conn, title="dies mid-call")
    d = await Dispatcher(kernel, role="worker", session_id=sid).open()
    try:
        ((_, leased),) = (await d.claim(["spender"])).tasks
        scopes = [(usage.agent_day_scope("spender"), 5.0), (usage.task_scope(t.id), 1.0)]
        async with kernel.connection() as conn:
            await usage.reserve(conn, scopes, 0.02)
        assert set((await _reserved(kernel)).values()) == {Decimal("0.02")}
        # ... and the process dies here, before settle(): the rescuer ends the lease
        future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        async with kernel.connection() as conn:
            rescued = await (
                await conn.execute(query("rescue_expired_leases"), {"now": future})
            ).fetchall()
        assert [r["task_id"] for r in rescued] == [leased.id]
        assert set((await _reserved(kernel)).values()) == {Decimal(0)}
    finally:
        await d.close()


async def test_a_reservation_made_without_a_lease_ends_with_its_session(kernel: Kernel) -> None:
    async with kernel.connection() as conn:
        await sessions.register_session(conn, role="worker", agents=["mailman"])
        scope = usage.agent_day_scope("mailman")
        await usage.reserve(conn, [(scope, 5.0)], 0.02)
    assert (await _reserved(kernel))[scope] == Decimal("0.02")
    duties = KernelDuties(kernel, uuid.uuid4())
    assert (await duties.run_once())["reservations"] == 0  # the session still runs
    async with kernel.connection() as conn:
        await conn.execute(query("reap_dead_sessions"), {"now": _AN_HOUR_ON})
    assert (await duties.run_once())["reservations"] == 1
    assert (await _reserved(kernel))[scope] == Decimal(0)


async def test_a_reservation_expires_after_its_ttl(kernel: Kernel) -> None:
    scope = "agent:nobody:2026-01-01"  # no agent, no task: only time ends it
    async with kernel.connection() as conn:
        await usage.reserve(conn, [(scope, 5.0)], 0.5, ttl=60)
        assert await usage.expire_reservations(conn) == 0
        later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
        assert await usage.expire_reservations(conn, now=later) == 1
    assert (await _reserved(kernel))[scope] == Decimal(0)


async def test_settling_a_returned_reservation_counts_the_cost_once_and_frees_nothing_twice(
    kernel: Kernel,
) -> None:
    scope = "agent:late:2026-01-01"
    async with kernel.connection() as conn:
        first = await usage.reserve(conn, [(scope, 5.0)], 1.0, ttl=60)
        later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
        assert await usage.expire_reservations(conn, now=later) == 1
        second = await usage.reserve(conn, [(scope, 5.0)], 1.0, ttl=3600)
        # the first call finished after all: its cost counts, the second stays reserved
        await usage.settle(conn, first, 0.25)
    assert (await _reserved(kernel))[scope] == Decimal("1.0")
    assert await _spent(kernel, scope) == Decimal("0.25")
    async with kernel.connection() as conn:
        await usage.settle(conn, second, 0.5)
    assert (await _reserved(kernel))[scope] == Decimal(0)
    assert await _spent(kernel, scope) == Decimal("0.75")


async def test_a_settled_call_leaves_nothing_for_the_lease_to_return(kernel: Kernel) -> None:
    async with kernel.connection() as conn:
        sid = await sessions.register_session(conn, role="worker", agents=["careful"])
        t = await tasks.create_task(conn, title="settles in time")
    d = await Dispatcher(kernel, role="worker", session_id=sid).open()
    try:
        ((agent, leased),) = (await d.claim(["careful"])).tasks
        scopes = [(usage.task_scope(t.id), 1.0)]
        async with kernel.connection() as conn:
            r = await usage.reserve(conn, scopes, 0.1)
            await usage.settle(conn, r, 0.05)
            await tasks.complete(conn, leased, actor=agent)
        assert (await _reserved(kernel))[usage.task_scope(t.id)] == Decimal(0)
        assert await _spent(kernel, usage.task_scope(t.id)) == Decimal("0.05")
    finally:
        await d.close()


@pytest.mark.parametrize("amount", [math.nan, math.inf, -1.0])
async def test_amounts_that_are_not_finite_and_positive_are_refused(
    kernel: Kernel, amount: float
) -> None:
    async with kernel.connection() as conn:
        with pytest.raises(errors.BadInput):
            await usage.reserve(conn, [("agent:x:2026-01-01", 5.0)], amount)
        with pytest.raises(errors.BadInput):
            await usage.reserve(conn, [("agent:x:2026-01-01", amount)], 0.01)
    # and in SQL too, whoever calls it
    with pytest.raises(errors.BadInput):
        async with kernel.connection() as conn:
            await conn.execute(
                "SELECT * FROM agentos.reserve_budget_v2(%s, %s::numeric[], %s::numeric)",
                (["agent:x:2026-01-01"], [Decimal(5)], str(amount)),
            )
