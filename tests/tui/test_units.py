"""Pure parts of mission control: formatting, filters, transcript text (no database)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
from agentos.tui import fmt
from agentos.tui.clock import fixed_clock, start_of_day
from agentos.tui.loaders import parse_filter
from agentos.tui.transcript import content_text, step_meta

NOW = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "0s"), (0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h"), (86400, "1d")],
)
def test_age(seconds: int, text: str) -> None:
    assert fmt.age(NOW - dt.timedelta(seconds=seconds), NOW) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0", "$0"),
        ("0.0123", "$0.0123"),
        ("0.5", "$0.50"),
        ("0.00001", "<$0.0001"),
        ("2", "$2.00"),
        ("1234.5", "$1,234.50"),
    ],
)
def test_money(value: str, text: str) -> None:
    assert fmt.money(Decimal(value)) == text


def test_clock_time_shows_the_date_only_for_other_days() -> None:
    assert fmt.clock_time(NOW - dt.timedelta(minutes=1), NOW) == "09:29:00"
    assert fmt.clock_time(NOW - dt.timedelta(days=1), NOW) == "11-20 09:30"


def test_clocks() -> None:
    assert fixed_clock(NOW)() == NOW
    assert start_of_day(NOW) == dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    with pytest.raises(ValueError):
        fixed_clock(dt.datetime(2026, 1, 1))


def test_filter_parameters() -> None:
    assert parse_filter("  ") == {"like": None, "qid": None}
    assert parse_filter("#12") == {"like": "%#12%", "qid": 12}
    assert parse_filter("12") == {"like": "%12%", "qid": 12}
    # LIKE wildcards typed by a person are literal
    assert parse_filter("50%_off") == {"like": r"%50\%\_off%", "qid": None}


def test_content_text_reads_the_agent_loop_shapes() -> None:
    assert content_text({"text": "hello", "round": "1"}) == "hello"
    llm = {
        "content": "reading",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}
        ],
        "model": "m",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.001,
    }
    assert content_text(llm) == "reading\n→ read_file({})"
    assert step_meta(llm) == "m · 15 tokens · $0.001"
    assert content_text({"ok": False, "output": "boom"}) == "✗ failed\noutput: boom"
    assert content_text({"arguments": {"cmd": "ls"}}) == 'arguments: {"cmd": "ls"}'
    assert content_text("plain") == "plain"
    assert content_text([1, 2]) == "[1, 2]"


def test_mission_control_reads_are_named_selects() -> None:
    from agentos.sql import tui_queries

    reads = tui_queries()
    assert {"header_stats", "agents", "board_counts", "board_cards", "feed", "task"} <= set(reads)
    for name, text in reads.items():
        assert text.lstrip("( \n").upper().startswith(("SELECT", "WITH")), name
        assert not re.search(r"\b(INSERT|UPDATE|DELETE|TRUNCATE|ALTER|DROP)\b", text, re.I), name


def test_mission_control_runs_no_sql_of_its_own() -> None:
    """Only the kernel runs SQL on agentos tables (issue 13): the TUI asks kernel.views.

    bench.py is left out: it fills a scratch database for the benchmark, as a fixture.
    """
    root = Path(__file__).resolve().parents[2] / "tui"
    # a table reference as SQL writes it (capitals; `from agentos.x import` is Python)
    statement = re.compile(r"\b(FROM|JOIN|INTO|UPDATE)\s+agentos\.[a-z_]+")
    offenders = [
        p.name
        for p in sorted(root.glob("*.py"))
        if p.name != "bench.py" and statement.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
