"""Keys a new user presses first: the help screen closes and quits, forms can be walked.

Issue 11: once `?` opened the key help, escape, ?, q, ctrl+q and ctrl+c did nothing (the
App's check_action refused every app action while a modal screen was up, pop_screen and
quit included); in the new-task form tab (app.focus_next) was refused the same way, so
everything typed landed in the title.
"""

from __future__ import annotations

import pytest
from agentos.tui.help_screen import HelpScreen
from agentos.tui.new_task_form import NewTaskForm
from textual.widgets import Input, TextArea


@pytest.mark.parametrize("key", ["escape", "question_mark", "q"])
async def test_the_help_screen_closes(make_app, helpers, key) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await helpers.settle(pilot)
        await pilot.press("question_mark")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        await pilot.press(key)
        await helpers.wait_for(
            pilot, lambda: not isinstance(app.screen, HelpScreen), timeout=3, what="help closed"
        )
        assert app.is_running  # closing the help does not quit
        await pilot.press("question_mark")  # and it opens again
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="again")


@pytest.mark.parametrize("key", ["ctrl+q", "ctrl+c"])
async def test_quit_keys_work_on_the_help_screen(make_app, helpers, key) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await helpers.settle(pilot)
        await pilot.press("question_mark")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        await pilot.press(key)
        await helpers.wait_for(pilot, lambda: app._exit, timeout=3, what=f"{key} quits")


async def test_ctrl_c_quits_from_the_board(make_app, helpers) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await helpers.settle(pilot)
        await pilot.press("ctrl+c")
        await helpers.wait_for(pilot, lambda: app._exit, timeout=3, what="ctrl+c quits")


async def test_tab_and_down_walk_the_new_task_form(make_app, sql, helpers) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await helpers.settle(pilot)
        await pilot.press("n")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, NewTaskForm), what="form")
        form = app.screen

        def focused() -> str | None:
            return app.focused.id if app.focused is not None else None

        assert focused() == "title"
        await pilot.press(*"quick fix?")  # q and ? are text in a field, not keys
        assert isinstance(app.screen, NewTaskForm) and app.is_running
        await pilot.press("tab")
        assert focused() == "description"
        await pilot.press(*"All of it.", "enter", *"Today.")
        await pilot.press("tab")
        assert focused() == "acceptance"
        await pilot.press(*"Shipped.")
        await pilot.press("shift+tab")  # back up, and down again from the title
        assert focused() == "description"
        await pilot.press("shift+tab")
        assert focused() == "title"
        await pilot.press("down")
        assert focused() == "description"
        await pilot.press("tab", "tab")
        assert focused() == "role"
        await pilot.press("ctrl+u", *"reviewer")
        await pilot.press("down")
        assert focused() == "priority"
        await pilot.press("ctrl+u", "3")
        assert form.query_one("#title", Input).value == "quick fix?"
        assert form.query_one("#description", TextArea).text == "All of it.\nToday."
        assert form.query_one("#acceptance", TextArea).text == "Shipped."
        await pilot.press("ctrl+s")
        await helpers.wait_for(pilot, lambda: not isinstance(app.screen, NewTaskForm))
        rows = await sql("SELECT title, description, acceptance, role, priority FROM agentos.tasks")
        assert rows == [
            {
                "title": "quick fix?",
                "description": "All of it.\nToday.",
                "acceptance": "Shipped.",
                "role": "reviewer",
                "priority": 3,
            }
        ]


async def test_q_quits_from_the_board_but_is_a_letter_in_a_form(make_app, helpers) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await helpers.settle(pilot)
        await pilot.press("n")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, NewTaskForm), what="form")
        app.screen.query_one("#submit").focus()  # not a text field: q must still not quit
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, NewTaskForm) and not app._exit
        await pilot.press("escape")
        await helpers.wait_for(pilot, lambda: not isinstance(app.screen, NewTaskForm))
        await pilot.press("q")
        await helpers.wait_for(pilot, lambda: app._exit, timeout=3, what="q quits")
