"""The main screen: seeded tasks land in their columns, and the screen follows NOTIFY."""

from __future__ import annotations

from decimal import Decimal

from agentos.tui.activity_feed import ActivityFeed
from agentos.tui.agents_panel import AgentsPanel
from agentos.tui.board import Board
from agentos.tui.service import PAGE
from agentos.tui.task_screen import TaskScreen


async def test_seeded_tasks_sit_in_their_columns(make_app, seeded, helpers) -> None:
    await seeded()
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await helpers.settle(pilot)
        board = app.query_one(Board)
        assert board.card_ids("inbox") == [2, 1, 10]  # priority first, then id
        assert board.card_ids("assigned") == [8]
        assert board.card_ids("in_progress") == [3]
        assert board.card_ids("review") == [4]
        assert board.card_ids("done") == [5]
        assert board.card_ids("stuck") == [6, 7, 9]  # blocked, failed, cancelled
        totals = {c.key: c.total for c in board.snapshot.columns}
        assert totals == {
            "inbox": 3,
            "assigned": 1,
            "in_progress": 1,
            "review": 1,
            "approval": 0,
            "done": 1,
            "stuck": 3,
        }
        stats = app.header_stats
        assert (stats.online, stats.registered, stats.done_today) == (4, 5, 1)
        assert stats.spend_today == Decimal("0.5668")
        assert {q.role: (q.ready, q.waiting) for q in stats.queues}["worker"] == (3, 1)
        agents = {a.name: a for a in app.query_one(AgentsPanel).snapshot.rows}
        assert agents["coder-1"].status == "working"
        assert agents["coder-1"].current_task_id == 3
        assert agents["coder-3"].status == "dead"  # its session stopped beating
        assert agents["coder-1"].spend_today == Decimal("0.0468")
        feed = app.query_one(ActivityFeed).ids()
        assert feed == sorted(feed, reverse=True) and len(feed) > 10


async def test_a_task_inserted_elsewhere_appears_without_a_key(make_app, sql, helpers) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await helpers.settle(pilot)
        board = app.query_one(Board)
        assert board.card_ids("inbox") == []
        # another connection, as psql or an agent would write it
        rows = await sql(
            "INSERT INTO agentos.tasks (title, role) VALUES ('Arrived by psql', 'worker') "
            "RETURNING id"
        )
        tid = rows[0]["id"]
        await helpers.wait_for(pilot, lambda: tid in board.card_ids("inbox"), what="the card")
        feed = app.query_one(ActivityFeed)
        await helpers.wait_for(
            pilot,
            lambda: any(r.task_id == tid and r.kind == "task.created" for r in feed.snapshot.rows),
            what="the activity",
        )
        # and a status change moves the card
        await sql(
            "SELECT agentos.transition_task(%s, 'blocked', 'bob', 'needs a decision')", (tid,)
        )
        await helpers.wait_for(pilot, lambda: tid in board.card_ids("stuck"), what="the move")
        assert board.card_ids("inbox") == []


async def test_a_held_merge_waits_in_approval_and_the_header_counts_it(
    make_app, sql, helpers
) -> None:
    from agentos.tui.team_header import TeamHeader

    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await helpers.settle(pilot)
        board = app.query_one(Board)
        assert app.header_stats.awaiting == 0
        rows = await sql("INSERT INTO agentos.tasks (title) VALUES ('Held merge') RETURNING id")
        tid = rows[0]["id"]
        # the way a held merge goes, written from another connection as psql would
        for to, why in (("in_progress", "claimed"), ("review", "handed over"),
                        ("approval", "approved; the merge waits for a person")):  # fmt: skip
            await sql("SELECT agentos.transition_task(%s, %s, 'bob', %s)", (tid, to, why))
        await helpers.wait_for(pilot, lambda: tid in board.card_ids("approval"), what="the card")
        await helpers.wait_for(pilot, lambda: app.header_stats.awaiting == 1, what="the count")
        assert "1 waiting for you" in app.query_one(TeamHeader).header_text().plain
        assert board.card_ids("review") == []
        await pilot.press("5")
        assert board.current_column().key == "approval" and board.selected_card().id == tid
        await sql("SELECT agentos.transition_task(%s, 'done', 'alice', 'approved')", (tid,))
        await helpers.wait_for(pilot, lambda: tid in board.card_ids("done"), what="done")
        await helpers.wait_for(pilot, lambda: app.header_stats.awaiting == 0, what="no count")
        assert "waiting for you" not in app.query_one(TeamHeader).header_text().plain


async def test_agent_changes_arrive_live(make_app, seeded, sql, helpers) -> None:
    await seeded()
    app = make_app()
    async with app.run_test() as pilot:
        await helpers.settle(pilot)
        panel = app.query_one(AgentsPanel)
        await sql(
            "UPDATE agentos.agents SET status = 'working', current_task_id = 8 "
            "WHERE name = 'coder-2'"
        )

        def coder2() -> object:
            return next(a for a in panel.snapshot.rows if a.name == "coder-2")

        await helpers.wait_for(pilot, lambda: coder2().status == "working", what="coder-2")
        assert coder2().current_task_id == 8


async def test_keyboard_moves_between_columns_and_opens_a_task(make_app, seeded, helpers) -> None:
    await seeded()
    app = make_app()
    async with app.run_test() as pilot:
        await helpers.settle(pilot)
        board = app.query_one(Board)
        assert board.selected_card().id == 2
        await pilot.press("down")
        assert board.selected_card().id == 1
        await pilot.press("right", "right")
        assert board.current_column().key == "in_progress"
        assert board.selected_card().id == 3
        await pilot.press("7", "down")
        assert board.selected_card().id == 7
        await pilot.press("left")
        assert board.current_column().key == "done"
        await pilot.press("3", "enter")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, TaskScreen))
        assert app.screen.task_id == 3
        await pilot.press("escape")
        assert not isinstance(app.screen, TaskScreen)
        await pilot.press("z")  # the focused column fills the screen, and back
        assert app.screen.maximized is board.current_column()
        await pilot.press("z")
        assert app.screen.maximized is None
        await pilot.press("f")
        assert app.focused is app.query_one(ActivityFeed)
        await pilot.press("a")
        assert app.focused is app.query_one(AgentsPanel)


async def test_filter_narrows_board_and_feed(make_app, seeded, helpers) -> None:
    await seeded()
    app = make_app()
    async with app.run_test() as pilot:
        await helpers.settle(pilot)
        await pilot.press("slash", *"retries")
        board = app.query_one(Board)
        await helpers.wait_for(pilot, lambda: board.snapshot.filter == "retries", what="filter")
        await helpers.settle(pilot)
        assert board.card_ids("inbox") == [10]
        assert board.card_ids("in_progress") == [3]
        assert sum(c.total for c in board.snapshot.columns) == 2
        feed = app.query_one(ActivityFeed).snapshot
        assert feed.rows and all("retries" in r.message.lower() for r in feed.rows)
        await pilot.press("escape")  # clears the filter
        await helpers.wait_for(pilot, lambda: board.snapshot.filter is None, what="no filter")
        await helpers.settle(pilot)
        assert board.card_ids("inbox") == [2, 1, 10]
        await pilot.press("slash", "#", "7", "enter")
        await helpers.wait_for(pilot, lambda: board.snapshot.filter == "#7", what="id filter")
        await helpers.settle(pilot)
        assert [c.total for c in board.snapshot.columns] == [0, 0, 0, 0, 0, 0, 1]


async def test_a_long_column_loads_a_page_at_a_time(make_app, sql, helpers) -> None:
    await sql(
        "INSERT INTO agentos.tasks (title) SELECT 'bulk ' || g FROM generate_series(1, 100) g"
    )
    app = make_app()
    async with app.run_test() as pilot:
        await helpers.settle(pilot)
        board = app.query_one(Board)
        inbox = board.columns[0]
        assert len(inbox.column.cards) == PAGE and inbox.column.total == 100
        assert inbox.border_title == "inbox 100"
        await pilot.press("end")  # the last loaded card: the next page is read
        await helpers.wait_for(pilot, lambda: len(inbox.column.cards) == 2 * PAGE, what="page 2")
        assert inbox.selected_task_id() == PAGE  # the cursor stayed on its card
