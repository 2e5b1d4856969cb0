"""Actions from the keyboard go through the kernel and change the rows."""

from __future__ import annotations

from decimal import Decimal

from agentos.tui.board import Board
from agentos.tui.budget_form import BudgetForm
from agentos.tui.confirm_screen import ConfirmScreen
from agentos.tui.message_form import MessageForm
from agentos.tui.new_task_form import NewTaskForm
from agentos.tui.task_screen import TaskScreen
from textual.widgets import Input, Static, TextArea


async def test_new_task_form_creates_a_row(make_app, sql, helpers) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await helpers.settle(pilot)
        await pilot.press("n")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, NewTaskForm), what="form")
        form = app.screen
        await pilot.press("ctrl+s")  # no title yet: refused in the form
        await helpers.wait_for(pilot, lambda: not form.busy)
        assert "title" in str(form.query_one("#error", Static).render())
        await pilot.press(*"Ship it")
        form.query_one("#description", TextArea).load_text("All of it.\nToday.")
        form.query_one("#acceptance", TextArea).load_text("It is shipped.")
        form.query_one("#role", Input).value = "reviewer"
        form.query_one("#priority", Input).value = "7"
        await pilot.press("ctrl+s")
        await helpers.wait_for(pilot, lambda: not isinstance(app.screen, NewTaskForm))
        rows = await sql("SELECT * FROM agentos.tasks")
        assert len(rows) == 1
        t = rows[0]
        assert (t["title"], t["description"], t["acceptance"]) == (
            "Ship it",
            "All of it.\nToday.",
            "It is shipped.",
        )
        assert (t["role"], t["priority"], t["status"], t["created_by"]) == (
            "reviewer",
            7,
            "inbox",
            "alice",
        )
        board = app.query_one(Board)
        await helpers.wait_for(pilot, lambda: t["id"] in board.card_ids("inbox"), what="card")


async def test_new_task_form_shows_kernel_errors(make_app, sql, helpers) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await helpers.settle(pilot)
        await pilot.press("n")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, NewTaskForm))
        form = app.screen
        await pilot.press(*"Bad role")
        form.query_one("#role", Input).value = "Not A Role"
        await pilot.press("ctrl+s")
        await helpers.wait_for(pilot, lambda: "role" in str(form.query_one("#error").render()))
        assert isinstance(app.screen, NewTaskForm)  # still open, nothing written
        assert await sql("SELECT id FROM agentos.tasks") == []
        await pilot.press("escape")
        assert not isinstance(app.screen, NewTaskForm)


async def test_cancel_then_retry_change_the_row(make_app, seeded, sql, helpers) -> None:
    await seeded()
    app = make_app()
    async with app.run_test() as pilot:
        await helpers.settle(pilot)
        board = app.query_one(Board)
        assert board.selected_card().id == 2
        await pilot.press("c")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # not yet
        await pilot.press("c")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")

        async def status(tid: int) -> str:
            return (await sql("SELECT status::text AS s FROM agentos.tasks WHERE id = %s", (tid,)))[
                0
            ]["s"]

        await helpers.wait_for(pilot, lambda: 2 in board.card_ids("stuck"), what="moved")
        assert await status(2) == "cancelled"
        actors = await sql(
            "SELECT actor FROM agentos.activities WHERE task_id = 2 AND kind = 'task.cancelled'"
        )
        assert actors == [{"actor": "alice"}]
        # the cancelled card is now in the last column: retry it from there
        await pilot.press("7")
        col = board.current_column()
        col.cards.highlighted = board.card_ids("stuck").index(2)
        await pilot.press("r")
        await helpers.wait_for(pilot, lambda: 2 in board.card_ids("inbox"), what="back")
        assert await status(2) == "inbox"
        # retrying a live task is refused with a message, and nothing changes
        await pilot.press("1")
        await pilot.press("r")
        await helpers.settle(pilot)
        assert await status(board.selected_card().id) == "inbox"


async def test_raise_budget_retries_a_blocked_task(make_app, seeded, sql, helpers) -> None:
    await seeded()
    app = make_app()
    async with app.run_test() as pilot:
        await helpers.settle(pilot)
        await sql(
            "INSERT INTO agentos.budgets (scope, limit_usd, spent_usd) VALUES ('task:6', 0.5, 0.5)"
        )
        board = app.query_one(Board)
        await pilot.press("7")
        assert board.selected_card().id == 6
        await pilot.press("b")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, BudgetForm), what="form")
        form = app.screen
        assert form.spent == Decimal("0.5") and form.budget == Decimal("0.5")
        form.query_one("#budget", Input).value = "0.40"
        await pilot.press("ctrl+s")
        await helpers.wait_for(pilot, lambda: "spent" in str(form.query_one("#error").render()))
        form.query_one("#budget", Input).value = "2"
        await pilot.press("ctrl+s")
        await helpers.wait_for(pilot, lambda: not isinstance(app.screen, BudgetForm))
        row = (await sql("SELECT status::text, budget_usd FROM agentos.tasks WHERE id = 6"))[0]
        assert row == {"status": "inbox", "budget_usd": Decimal("2")}
        scope = await sql("SELECT limit_usd FROM agentos.budgets WHERE scope = 'task:6'")
        assert scope == [{"limit_usd": Decimal("2")}]
        audit = await sql("SELECT actor FROM agentos.activities WHERE kind = 'task.budget'")
        assert audit == [{"actor": "alice"}]
        await helpers.wait_for(pilot, lambda: 6 in board.card_ids("inbox"), what="requeued")


async def test_message_an_agent_and_a_task(make_app, seeded, sql, helpers) -> None:
    await seeded()
    app = make_app()
    async with app.run_test() as pilot:
        await helpers.settle(pilot)
        # to an agent, from the agents panel
        await pilot.press("a", "down")  # planner, judge: rows are ordered by role, name
        await pilot.press("m")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, MessageForm), what="form")
        form = app.screen
        assert form.query_one("#to", Input).value == "judge"
        assert form.query_one("#task", Input).value == ""
        await pilot.press(*"Look at #4")
        await pilot.press("ctrl+s")
        await helpers.wait_for(pilot, lambda: not isinstance(app.screen, MessageForm))
        # about a task, from its screen: addressed to its holder
        app.open_task(3)
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, TaskScreen))
        await helpers.settle(pilot)
        await pilot.press("m")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, MessageForm))
        form = app.screen
        assert form.query_one("#to", Input).value == "coder-1"
        assert form.query_one("#task", Input).value == "#3"
        form.query_one("#body", TextArea).load_text("How is it going?")
        await pilot.press("ctrl+s")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, TaskScreen))
        rows = await sql(
            "SELECT task_id, from_agent, to_agent, body FROM agentos.messages "
            "WHERE from_agent = 'alice' AND body NOT LIKE 'Please keep%%' ORDER BY id"
        )
        assert rows == [
            {
                "task_id": None,
                "from_agent": "alice",
                "to_agent": "judge",
                "body": "Look at #4",
            },
            {
                "task_id": 3,
                "from_agent": "alice",
                "to_agent": "coder-1",
                "body": "How is it going?",
            },
        ]


async def test_keys_on_the_task_screen_act_on_its_task(make_app, seeded, sql, helpers) -> None:
    await seeded()
    app = make_app(open_task=7)  # failed
    async with app.run_test() as pilot:
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, TaskScreen))
        screen = app.screen
        await helpers.wait_for(pilot, lambda: screen.detail is not None)
        await pilot.press("r")
        await helpers.wait_for(pilot, lambda: screen.detail.task["status"] == "inbox")
        await pilot.press("c")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await helpers.wait_for(pilot, lambda: screen.detail.task["status"] == "cancelled")
        rows = await sql("SELECT status::text FROM agentos.tasks WHERE id = 7")
        assert rows == [{"status": "cancelled"}]
