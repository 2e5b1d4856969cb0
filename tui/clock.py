"""Time for the screen: one injectable clock, so tests pin it and ages stay exact.

Ages, "today" and agent liveness are all computed from the same clock. The default
clock follows the database server's time (offset measured once at connect), so a
laptop whose clock drifts still shows the ages the database would compute.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    """Now, aware, in the local time zone."""
    return dt.datetime.now().astimezone()


def fixed_clock(at: dt.datetime) -> Clock:
    """A clock that always says `at` (tests, screenshots)."""
    if at.tzinfo is None:
        raise ValueError("a fixed clock needs an aware datetime")
    return lambda: at


def offset_clock(offset: dt.timedelta) -> Clock:
    """The local clock shifted by `offset` (the server's clock as seen from here)."""
    return lambda: system_clock() + offset


def start_of_day(now: dt.datetime) -> dt.datetime:
    """Midnight of now's day, in now's time zone ("today" for done and spend)."""
    return now.replace(hour=0, minute=0, second=0, microsecond=0)
