"""Formatting helpers for small screens: ages, money, counts, one-line text, safe text."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from agentos.kernel.models import printable


def shown(text: str) -> str:
    """Stored text made safe for the screen: control characters as visible escapes.

    Titles and bodies are checked on the way in, but agents' results, errors, steps and
    rows written before the checks are not: an escape sequence in them must not move the
    cursor, recolour or rewrite the screen (as the CLI's output, kernel.models.printable).
    Newlines and tabs stay; bidi overrides and the like are escaped too.
    """
    return printable(text, keep_newlines=True)


def shown_tree(value: Any) -> Any:
    """shown() applied to every string inside a JSON-like value (keys included)."""
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, dict):
        return {shown_tree(k): shown_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [shown_tree(v) for v in value]
    return value


def age(then: dt.datetime | None, now: dt.datetime) -> str:
    """A compact age: 45s, 12m, 3h, 5d (never negative)."""
    if then is None:
        return "-"
    secs = max(0, int((now - then).total_seconds()))
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m"
    if secs < 86400:
        return f"{secs // 3600}h"
    return f"{secs // 86400}d"


def money(value: Decimal | float | int | None) -> str:
    """Dollars: cents from $1 up, four decimals below (LLM calls cost fractions of a cent)."""
    if value is None:
        return "-"
    v = Decimal(value)
    if v == 0:
        return "$0"
    if abs(v) >= 1:
        return f"${v:,.2f}"
    if abs(v) < Decimal("0.0001"):
        return "<$0.0001" if v > 0 else "-<$0.0001"
    text = f"{v:.4f}".rstrip("0")
    if len(text.split(".")[1]) < 2:
        text = f"{v:.2f}"
    return f"${text}"


def count(n: int) -> str:
    """Counts with thousands separators; 12,345."""
    return f"{n:,}"


def one_line(text: str | None, limit: int = 200) -> str:
    """Collapse whitespace to one line and cut at limit characters."""
    s = " ".join((text or "").split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def clock_time(ts: dt.datetime | None, now: dt.datetime) -> str:
    """HH:MM:SS in the clock's time zone, with the date when it is not today."""
    if ts is None:
        return "-"
    local = ts.astimezone(now.tzinfo)
    if local.date() == now.date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%m-%d %H:%M")
