"""The task screen: the transcript, messages and cost, kept live from NOTIFY."""

from __future__ import annotations

from agentos.tui.task_screen import TaskScreen
from textual.widgets import RichLog, TabbedContent


def log_text(screen: TaskScreen, log_id: str) -> str:
    """The plain text of one of the screen's logs."""
    return "\n".join(line.text for line in screen.query_one(log_id, RichLog).lines)


async def test_task_screen_shows_the_transcript(make_app, seeded, helpers) -> None:
    await seeded()
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await helpers.settle(pilot)
        await pilot.press("3", "enter")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, TaskScreen))
        screen = app.screen
        await helpers.wait_for(pilot, lambda: screen.detail is not None, what="detail")
        await helpers.settle(pilot)
        d = screen.detail
        assert d.task["id"] == 3 and d.step_total == 7 and d.calls == 2
        assert [r.id for r in d.depends_on] == [] and [r.id for r in d.subtasks] == [10]
        await pilot.press("2")
        assert screen.query_one(TabbedContent).active == "transcript"
        await pilot.pause()
        text = log_text(screen, "#steps")
        for expected in (
            "system · coder-1 · work",
            "You are coder-1",
            "llm · coder-1 · work · 09:21:00 · gpt-4o-mini · 1,500 tokens · $0.0123",
            '→ read_file({"path": "src/http.py"})',
            "tool_result read_file",
            "return session.get(url)",
            "note · coder-1",
        ):
            assert expected in text, f"{expected!r} not in\n{text}"
        assert "round" not in text  # loop bookkeeping stays out of the way
        overview = helpers.screen_text(app)
        assert "branch agentos/task-3" in overview and "$0.0468 (no budget)" in overview


async def test_new_steps_and_messages_stream_in(make_app, seeded, sql, helpers) -> None:
    await seeded()
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await helpers.settle(pilot)
        app.open_task(3)
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, TaskScreen))
        screen = app.screen
        await helpers.wait_for(pilot, lambda: screen.detail is not None)
        await pilot.press("2")  # a log renders only while its tab shows
        await sql(
            "INSERT INTO agentos.steps (task_id, stage, seq, agent, kind, tool_name, content) "
            "VALUES (3, 'work', 7, 'coder-1', 'tool_call', 'shell', "
            """'{"arguments": {"cmd": "pytest -q"}}')"""
        )
        await helpers.wait_for(
            pilot, lambda: "pytest -q" in log_text(screen, "#steps"), what="the new step"
        )
        assert screen.detail.step_total == 8
        await pilot.press("3")
        await sql(
            "INSERT INTO agentos.messages (task_id, from_agent, to_agent, kind, body) "
            "VALUES (3, 'judge', 'coder-1', 'question', 'Which backoff do you use?')"
        )
        await helpers.wait_for(
            pilot,
            lambda: "Which backoff" in log_text(screen, "#message-log"),
            what="the new message",
        )
        # a status change of the task shows too
        await sql("SELECT agentos.transition_task(3, 'blocked', 'coder-1', 'needs a key')")
        await helpers.wait_for(pilot, lambda: screen.detail.task["status"] == "blocked")
        # and escape goes back to the board, which stopped following the task
        await pilot.press("escape")
        await helpers.wait_for(pilot, lambda: app.service.task_id is None)


async def test_a_missing_task_says_so(make_app, helpers) -> None:
    app = make_app(open_task=99)
    async with app.run_test() as pilot:
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, TaskScreen))
        await helpers.settle(pilot)
        assert "#99: no such task" in helpers.screen_text(app)


async def test_related_tasks_open_their_own_screen(make_app, seeded, helpers) -> None:
    await seeded()
    app = make_app(open_task=10)
    async with app.run_test(size=(100, 30)) as pilot:
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, TaskScreen))
        screen = app.screen
        await helpers.wait_for(pilot, lambda: screen.detail is not None)
        assert [r.id for r in screen.detail.depends_on] == [3]
        screen.query_one("#related").focus()
        await pilot.press("enter")
        await helpers.wait_for(pilot, lambda: app.screen is not screen, what="the dependency")
        assert app.screen.task_id == 3 and app.service.task_id == 3
        await pilot.press("escape")
        await helpers.wait_for(pilot, lambda: app.service.task_id == 10, what="watching 10")
