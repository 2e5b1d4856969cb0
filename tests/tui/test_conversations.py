"""The conversations screen under Pilot: the unread count in the header, the inbox, per
agent, per channel and per task, reading marks read, `m` writes, live from NOTIFY."""

from __future__ import annotations

from typing import Any

from agentos.kernel import channels
from agentos.tui.conversations_screen import ConversationsScreen
from agentos.tui.message_form import MessageForm
from agentos.tui.team_header import TeamHeader
from textual.widgets import Input, OptionList, RichLog, TextArea


def log_text(screen: ConversationsScreen) -> str:
    return "\n".join(line.text for line in screen.query_one("#conv-log", RichLog).lines)


def header(app: Any) -> str:
    return app.query_one(TeamHeader).header_text().plain


async def choose(pilot: Any, screen: ConversationsScreen, key: str, helpers: Any) -> None:
    """Move down the list (the keys a person presses) until `key` is selected."""
    lst = screen.query_one(OptionList)
    lst.focus()
    for _ in range(lst.option_count + 1):
        if screen.selected == key:
            break
        await pilot.press("down")
    assert screen.selected == key, f"{key} not reached; at {screen.selected}"
    await helpers.wait_for(
        pilot,
        lambda: screen.data is not None and screen.data.selected == key,
        what=f"the messages of {key}",
    )


async def test_the_header_counts_unread_and_reading_the_inbox_marks_it_read(
    make_app, seeded, sql, helpers
) -> None:
    await seeded()  # coder-1 answered alice on task 3: one unread message for alice
    app = make_app()
    async with app.run_test(size=(110, 30)) as pilot:
        await helpers.settle(pilot)
        assert "✉ 1 │" in header(app)
        await pilot.press("t")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        screen = app.screen
        await helpers.wait_for(pilot, lambda: screen.data is not None, what="the inbox")
        text = log_text(screen)
        assert "  09:24:00 alice → coder-1 on task #3 · comment · #1" in text
        assert "● 09:25:00 coder-1 → alice on task #3 · answer · #2" in text
        assert "Will do: only the internals change." in text
        # shown is read: a receipt for alice, and the header follows (NOTIFY)
        await helpers.wait_for(pilot, lambda: "✉" not in header(app), what="unread gone")
        rows = await sql("SELECT m.body FROM agentos.message_reads r JOIN agentos.messages m "
                         "ON m.id = r.message_id WHERE r.reader = 'alice'")  # fmt: skip
        assert rows == [{"body": "Will do: only the internals change."}]
        await helpers.settle(pilot)
        assert "● 09:25:00 coder-1" in log_text(screen)  # still new while the reader looks
        # a new message arrives live, from another connection
        await sql("INSERT INTO agentos.messages (from_agent, to_agent, kind, body) "
                  "VALUES ('judge', 'alice', 'question', 'Can I merge #4?')")  # fmt: skip
        await helpers.wait_for(pilot, lambda: "Can I merge #4?" in log_text(screen), what="live")
        await helpers.wait_for(pilot, lambda: "✉" not in header(app), what="read again")
        await pilot.press("escape")
        await helpers.wait_for(pilot, lambda: app.service.conversation is None)


async def test_per_agent_channel_and_task_and_m_writes_there(
    make_app, seeded, sql, kernel, helpers
) -> None:
    await seeded()
    async with kernel.connection() as conn:
        await channels.create_channel(
            conn, "ops", members=["coder-1", "judge"], created_by="alice", description="on call"
        )
        await channels.post(
            conn, "ops", "@alice main is green", from_agent="judge", as_person=False
        )
    app = make_app()
    async with app.run_test(size=(120, 34)) as pilot:
        await helpers.settle(pilot)
        assert "✉ 2 │" in header(app)
        app.open_conversations()
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        screen = app.screen
        await helpers.wait_for(pilot, lambda: screen.data is not None)
        refs = {r.key: r for r in screen.data.refs}
        assert {"inbox", "channel:ops", "agent:coder-1", "agent:judge", "task:3"} <= set(refs)
        # per channel
        await choose(pilot, screen, "channel:ops", helpers)
        assert "judge → #ops · comment" in log_text(screen)
        await pilot.press("m")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, MessageForm), what="form")
        form = app.screen
        assert form.query_one("#channel", Input).value == "ops"
        assert (
            form.query_one("#to", Input).value == "" and form.query_one("#task", Input).value == ""
        )
        form.query_one("#body", TextArea).load_text("@coder-1 can you deploy?")
        await pilot.press("ctrl+s")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        await helpers.wait_for(pilot, lambda: "can you deploy?" in log_text(screen), what="post")
        rows = await sql("SELECT c.name, m.from_agent, m.woken FROM agentos.messages m "
                         "JOIN agentos.channels c ON c.id = m.channel_id ORDER BY m.id")  # fmt: skip
        assert rows[-1] == {"name": "ops", "from_agent": "alice", "woken": ["coder-1"]}
        # per agent: what passed between alice and coder-1
        await choose(pilot, screen, "agent:coder-1", helpers)
        text = log_text(screen)
        assert "Please keep the public API unchanged." in text and "Will do" in text
        assert "main is green" not in text
        await pilot.press("m")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, MessageForm))
        assert app.screen.query_one("#to", Input).value == "coder-1"
        await pilot.press("escape")
        # per task: task 3's thread
        await choose(pilot, screen, "task:3", helpers)
        assert "Will do" in log_text(screen)
        await pilot.press("m")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, MessageForm))
        form = app.screen
        assert (
            form.query_one("#task", Input).value == "#3"
            and form.query_one("#to", Input).value == ""
        )
        form.query_one("#body", TextArea).load_text("Any blockers?")
        await pilot.press("ctrl+s")
        await helpers.wait_for(pilot, lambda: "Any blockers?" in log_text(screen), what="thread")
        rows = await sql("SELECT task_id, from_agent, woken FROM agentos.messages "
                         "WHERE body = 'Any blockers?'")  # fmt: skip
        assert rows == [{"task_id": 3, "from_agent": "alice", "woken": ["coder-1"]}]  # its holder
        await helpers.wait_for(pilot, lambda: "✉" not in header(app), what="all read")


async def test_t_on_a_task_screen_opens_its_thread(make_app, seeded, helpers) -> None:
    await seeded()
    app = make_app(open_task=3)
    async with app.run_test(size=(100, 30)) as pilot:
        await helpers.settle(pilot)
        await pilot.press("t")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        screen = app.screen
        assert screen.selected == "task:3"
        await helpers.wait_for(pilot, lambda: screen.data is not None)
        assert "Please keep the public API unchanged." in log_text(screen)


async def test_conversations_at_80x24(make_app, seeded, helpers) -> None:
    await seeded()
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await helpers.settle(pilot)
        await pilot.press("t")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        screen = app.screen
        await helpers.wait_for(pilot, lambda: screen.data is not None)
        await helpers.wait_for(pilot, lambda: "✉" not in header(app), what="read")
        await helpers.settle(pilot)
        helpers.compare_snapshot(app, "conversations-80x24")
