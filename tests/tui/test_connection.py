"""A lost connection shows a banner, reconnects, then resynchronises."""

from __future__ import annotations

from agentos.tui.board import Board
from agentos.tui.connection_banner import ConnectionBanner


async def test_lost_connection_banner_reconnect_and_resync(make_app, sql, helpers) -> None:
    # a slow first reconnect leaves time to see the banner and to write while it is deaf
    app = make_app(service_options={"reconnect_delay": 1.0})
    async with app.run_test() as pilot:
        await helpers.settle(pilot)
        banner = app.query_one(ConnectionBanner)
        assert app.online is True and not banner.offline
        # the server drops every connection of the app (a restart, a failover, a proxy)
        await sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        await helpers.wait_for(pilot, lambda: banner.offline, what="the banner")
        assert "database unreachable" in helpers.screen_text(app)
        # written while the app cannot hear: its NOTIFY is lost for good
        rows = await sql("INSERT INTO agentos.tasks (title) VALUES ('while deaf') RETURNING id")
        board = app.query_one(Board)
        await helpers.wait_for(pilot, lambda: not banner.offline, timeout=15, what="reconnect")
        await helpers.wait_for(
            pilot, lambda: rows[0]["id"] in board.card_ids("inbox"), what="the resync"
        )
        assert app.service.listener.reconnects >= 1


async def test_unreachable_database_at_start_shows_the_banner(settings, helpers) -> None:
    from agentos.tui.app import MissionControl

    app = MissionControl(
        settings,
        url="postgresql://agentos@127.0.0.1:9/nowhere?connect_timeout=1",
        tick_interval=0,
        service_options={"reconnect_delay": 0.1},
    )
    async with app.run_test() as pilot:
        banner = app.query_one(ConnectionBanner)
        await helpers.wait_for(pilot, lambda: banner.offline, timeout=20, what="the banner")
        assert "database unreachable" in str(banner.render())
