"""The service alone (no Textual): NOTIFY bursts coalesce, actions go through the kernel."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal

import pytest
from agentos.kernel import errors
from agentos.kernel import tasks as ktasks
from agentos.tui import model
from agentos.tui.actions import raise_budget, send_message
from agentos.tui.service import TeamService


async def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_burst_of_notifications_costs_a_few_reads(settings, db_url, kernel) -> None:
    got: list[object] = []
    service = TeamService(settings, sink=got.append, url=db_url, min_gap=0.05)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        boards = lambda: [g for g in got if isinstance(g, model.Board)]  # noqa: E731
        await _until(lambda: boards())
        before = len(boards())
        async with kernel.connection() as conn:
            for i in range(300):  # 300 transactions, 300 NOTIFYs on agentos_task
                await conn.execute("INSERT INTO agentos.tasks (title) VALUES (%s)", (f"t{i}",))
                await conn.commit()
        await _until(lambda: boards() and boards()[-1].columns[0].total == 300)
        reads = len(boards()) - before
        assert reads < 60, f"{reads} board reads for 300 notifications"
        assert len(boards()[-1].columns[0].cards) == 40  # one page, however many there are
        assert any(isinstance(g, model.Connection) and g.online for g in got)
    finally:
        service.stop()
        await asyncio.to_thread(service.join, 10)
    assert not thread.is_alive()


async def test_raise_budget_of_a_blocked_task_retries_it(kernel) -> None:
    async with kernel.connection() as conn:
        t = await ktasks.create_task(conn, title="costly")
        await ktasks.transition(conn, t.id, "blocked", actor="coder", reason="budget exhausted")
        after = await raise_budget(conn, t.id, Decimal("3.5"), actor="alice")
        assert after.status == "inbox"
        row = await (
            await conn.execute("SELECT budget_usd FROM agentos.tasks WHERE id = %s", (t.id,))
        ).fetchone()
        assert row["budget_usd"] == Decimal("3.5")
        # a live task keeps its state; a missing one is NotFound
        again = await raise_budget(conn, t.id, Decimal("4"), actor="alice")
        assert again.status == "inbox"
        with pytest.raises(errors.NotFound):
            await raise_budget(conn, 999, Decimal("1"), actor="alice")
        with pytest.raises(errors.BadInput):
            await raise_budget(conn, t.id, Decimal("-1"), actor="alice")


async def test_send_message_checks_the_addressee(kernel) -> None:
    async with kernel.connection() as conn:
        t = await ktasks.create_task(conn, title="talk about me")
        mid = await send_message(conn, body="hello", task_id=t.id, from_agent="alice")
        assert mid > 0
        with pytest.raises(errors.BadInput):
            await send_message(conn, body="hello", to_agent="nobody", from_agent="alice")
        with pytest.raises(errors.BadInput):
            await send_message(conn, body="   ", task_id=t.id, from_agent="alice")
        with pytest.raises(errors.BadInput):
            await send_message(conn, body="to whom?", from_agent="alice")
        await conn.execute("INSERT INTO agentos.agents (name, role) VALUES ('worker-9', 'worker')")
        with pytest.raises(errors.BadInput, match="agent's name"):  # a person is not an agent
            await send_message(conn, body="hi", task_id=t.id, from_agent="worker-9")


async def _budget(conn, task_id: int) -> Decimal | None:
    row = await (
        await conn.execute("SELECT budget_usd FROM agentos.tasks WHERE id = %s", (task_id,))
    ).fetchone()
    return row["budget_usd"]


async def test_raise_budget_of_a_live_task_keeps_it_running(kernel) -> None:
    async with kernel.connection() as conn:
        t = await ktasks.create_task(conn, title="running low")
        after = await raise_budget(conn, t.id, Decimal("2.5"), actor="alice")
        assert after.status == "inbox" and await _budget(conn, t.id) == Decimal("2.5")
        audit = await (
            await conn.execute(
                "SELECT actor FROM agentos.activities WHERE task_id = %s AND kind = 'task.budget'",
                (t.id,),
            )
        ).fetchall()
        assert audit == [{"actor": "alice"}]


async def test_raise_budget_of_a_done_or_cancelled_task_changes_nothing(kernel) -> None:
    async with kernel.connection() as conn:
        done = await ktasks.create_task(conn, title="finished")
        await ktasks.transition(conn, done.id, "in_progress", actor="coder")
        await ktasks.transition(conn, done.id, "done", actor="judge")
        gone = await ktasks.create_task(conn, title="stopped")
        await ktasks.cancel(conn, gone.id, actor="alice")
        for tid in (done.id, gone.id):
            with pytest.raises(errors.InvalidTransition, match="nothing changed"):
                await raise_budget(conn, tid, Decimal("9"), actor="alice")
            assert await _budget(conn, tid) is None
        with pytest.raises(errors.BadInput):
            await raise_budget(conn, gone.id, Decimal("1e12"), actor="alice")


async def test_a_raise_whose_retry_is_refused_leaves_the_budget(kernel) -> None:
    """Seen blocked, retried by someone else before the raise gets the row: refused, unchanged.

    The raise is a retry with a budget in one transaction (as `task retry --budget`); the
    old raise-then-retry wrote the budget and then found nothing to retry.
    """
    async with kernel.connection() as conn:
        t = await ktasks.create_task(conn, title="contended")
        await ktasks.transition(conn, t.id, "blocked", actor="coder", reason="budget exhausted")
    async with kernel.connection() as other:
        await other.execute("SELECT 1")  # in a transaction: retry's own becomes a savepoint
        await ktasks.retry(other, t.id, actor="bob")  # row locked until this block commits

        async def raise_it() -> None:
            async with kernel.connection() as conn:
                await raise_budget(conn, t.id, Decimal("5"), actor="alice")

        racing = asyncio.create_task(raise_it())
        async with kernel.connection() as watch:  # wait until the raise waits for the row
            deadline = time.monotonic() + 10
            while True:
                row = await (
                    await watch.execute(
                        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = "
                        "current_database() AND wait_event_type = 'Lock'"
                    )
                ).fetchone()
                await watch.commit()
                if row["n"] or racing.done():
                    break
                assert time.monotonic() < deadline, "the raise never waited for the row"
                await asyncio.sleep(0.02)
    with pytest.raises(errors.InvalidTransition):
        await racing
    async with kernel.connection() as conn:
        assert await _budget(conn, t.id) is None
        assert (await ktasks.get_task(conn, t.id)).status == "inbox"
