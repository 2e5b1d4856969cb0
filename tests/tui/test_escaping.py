"""Stored text cannot drive the terminal: control characters reach the screen as escapes.

Titles and bodies are checked on the way in (sql/004_input_checks.sql), but what agents
write (results, errors, steps, activity text) is not constrained, and rows may predate
the checks. A result carrying `ESC [2J` must not clear the screen, recolour it or set
the window title; the TUI shows it as the text `\\x1b[2J` (as the CLI does).
"""

from __future__ import annotations

from agentos.tui import fmt
from agentos.tui.activity_feed import ActivityFeed
from agentos.tui.task_screen import TaskScreen
from psycopg.types.json import Jsonb

CLEAR = "\x1b[2J\x1b[H"
TITLE = "\x1b]0;owned\x07"
RTL = "\u202e"


def test_shown_escapes_control_characters_and_keeps_lines() -> None:
    assert fmt.shown(f"a{CLEAR}b\n\tc") == "a\\x1b[2J\\x1b[Hb\n\tc"
    assert fmt.shown(f"{TITLE}x{RTL}") == "\\x1b]0;owned\\x07x\\u202e"
    assert fmt.shown_tree({"text": CLEAR, "n": 1, "list": [TITLE]}) == {
        "text": "\\x1b[2J\\x1b[H",
        "n": 1,
        "list": ["\\x1b]0;owned\\x07"],
    }


async def test_agent_written_text_is_shown_escaped(make_app, seeded, sql, helpers) -> None:
    await seeded()
    await sql(
        "UPDATE agentos.tasks SET error = %s, result = %s WHERE id = 7",
        (f"lease lost{TITLE}", f"{CLEAR}ALL TESTS PASS{RTL}"),
    )
    await sql(
        "INSERT INTO agentos.steps (task_id, stage, seq, agent, kind, content) "
        "VALUES (7, 'work', 0, 'coder-3', 'note', %s)",
        (Jsonb({"text": f"note{CLEAR}fake prompt $ "}),),
    )
    await sql(
        "INSERT INTO agentos.activities (kind, actor, task_id, message) "
        "VALUES ('agent.step', 'coder-3', 7, %s)",
        (f"step{CLEAR}approved",),
    )
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await helpers.settle(pilot)
        feed = app.query_one(ActivityFeed)
        assert feed.snapshot is not None
        assert feed.snapshot.rows[0].message == "step\\x1b[2J\\x1b[Happroved"
        board_text = helpers.screen_text(app)
        assert "\x1b" not in board_text and "step\\x1b[2J" in board_text
        app.open_task(7)
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, TaskScreen))
        screen = app.screen
        await helpers.wait_for(pilot, lambda: screen.detail is not None, what="detail")
        await helpers.settle(pilot)
        task = screen.detail.task
        assert task["error"] == "lease lost\\x1b]0;owned\\x07"
        assert task["result"] == "\\x1b[2J\\x1b[HALL TESTS PASS\\u202e"
        assert screen.detail.steps[0].content == {"text": "note\\x1b[2J\\x1b[Hfake prompt $ "}
        overview_text = helpers.screen_text(app)
        assert "\x1b" not in overview_text and "\x07" not in overview_text
        assert "lease lost\\x1b]0;owned\\x07" in overview_text
        await pilot.press("2")
        await pilot.pause()
        transcript_text = helpers.screen_text(app)
        assert "\x1b" not in transcript_text and "note\\x1b[2J" in transcript_text
