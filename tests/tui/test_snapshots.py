"""Screens compared with committed text snapshots (time, ids and data pinned).

pytest-textual-snapshot does not support pytest 9 yet, so the screen is exported as
text by Rich (tests/tui/conftest.py: screen_text) and compared with snapshots/*.txt.
`AGENTOS_UPDATE_SNAPSHOTS=1 pytest tests/tui/test_snapshots.py` rewrites them (and the
README's screenshot, docs/images/mission-control.svg); review the diff before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

from agentos.tui.new_task_form import NewTaskForm
from agentos.tui.task_screen import TaskScreen
from textual.widgets import Input

README_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "mission-control.svg"


async def test_board_at_80x24(make_app, seeded, helpers) -> None:
    await seeded()
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await helpers.settle(pilot)
        helpers.compare_snapshot(app, "board-80x24")


async def test_board_wide(make_app, seeded, helpers) -> None:
    await seeded()
    app = make_app()
    async with app.run_test(size=(130, 34)) as pilot:
        await helpers.settle(pilot)
        await pilot.press("3")
        helpers.compare_snapshot(app, "board-130x34")
        if os.environ.get(helpers.update_env):
            README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
            README_IMAGE.write_text(app.export_screenshot(title="agentos tui"), encoding="utf-8")


async def test_task_transcript_at_80x24(make_app, seeded, helpers) -> None:
    await seeded()
    app = make_app(open_task=3)
    async with app.run_test(size=(80, 24)) as pilot:
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, TaskScreen))
        await helpers.settle(pilot)
        helpers.compare_snapshot(app, "task-overview-80x24")
        await pilot.press("2")
        await pilot.pause()
        helpers.compare_snapshot(app, "task-transcript-80x24")


async def test_new_task_form_at_80x24(make_app, helpers) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await helpers.settle(pilot)
        await pilot.press("n")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, NewTaskForm))
        app.screen.query_one("#title", Input).value = "Fix the flaky test"
        await pilot.pause()
        helpers.compare_snapshot(app, "new-task-80x24")


async def test_keys_at_80x24(make_app, helpers) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await helpers.settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        helpers.compare_snapshot(app, "keys-80x24")
