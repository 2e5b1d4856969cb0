"""Leader election: a lease row per duty in agentos.leader_leases.

Protocol
--------
         acquire ok                      renew ok (every period <= ttl/3)
 follower ----------> leader  <--------------------------------+
    ^                   |  \\________________________________/
    |   lease expired   |  renew fails or holder changed
    +-------------------+  (or we stop: release at once)

A candidate inserts the row or takes it over when `expires_at` has passed; the holder
renews it every ttl/3 and gives it up on shutdown, so a clean hand-over is immediate
and a dead leader is replaced within one ttl. A leader that cannot renew (database
unreachable) stops acting as leader at once: it must assume someone else took over.
Time comes from the database (now()), never from local clocks; tests pass `now`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable

from agentos.kernel.db import Kernel
from agentos.sql import query

log = logging.getLogger(__name__)


class Leadership:
    """Holds (or tries to hold) the lease of one duty for one holder id."""

    def __init__(
        self,
        kernel: Kernel,
        duty: str,
        holder: uuid.UUID,
        ttl: float,
        *,
        period: float | None = None,
    ) -> None:
        self.kernel = kernel
        self.duty = duty
        self.holder = holder
        self.ttl = ttl
        # how often run() acquires or renews: ttl/3, or sooner for a duty whose
        # take-over must be quick (the kernel's: within one ttl and one poll interval)
        self.period = min(period, ttl / 3) if period else ttl / 3
        self._leading = False
        self._until = 0.0  # monotonic: the lease is ours until then at the latest

    @property
    def is_leader(self) -> bool:
        """Whether we lead now: the last renewal said so and its lease has not run out
        since (a process frozen past its lease does not act as leader when it wakes)."""
        return self._leading and time.monotonic() < self._until

    async def tick(self, now: dt.datetime | None = None) -> bool:
        """Acquire or renew; returns whether we lead now."""
        asked = time.monotonic()  # the lease runs from before the request, not the reply
        try:
            async with self.kernel.connection() as conn:
                row = await (
                    await conn.execute(
                        query("acquire_leadership"),
                        {"duty": self.duty, "holder": self.holder, "ttl": self.ttl, "now": now},
                    )
                ).fetchone()
            leading = bool(row and row["leader"])
        except Exception:
            log.warning("leadership check for %s failed", self.duty, exc_info=True)
            leading = False
        if leading != self._leading:
            log.info(
                "%s leadership of %s",
                "took" if leading else "lost",
                self.duty,
                extra={"action": "leader.change", "duty": self.duty},
            )
        self._leading = leading
        self._until = asked + self.ttl if leading else 0.0
        return leading

    async def run(self, stop: asyncio.Event, *, on_gain: Callable[[], None] | None = None) -> None:
        """Keep the lease until `stop`: acquire or renew every `period` (at most ttl/3),
        call `on_gain` when leadership is taken, release it at the end. The one cadence of
        a duty's lease."""
        try:
            while not stop.is_set():
                was = self.is_leader
                if await self.tick() and not was and on_gain is not None:
                    on_gain()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.period)
        finally:
            await self.release()

    async def release(self) -> None:
        """Give the duty up (shutdown): another process can take it at once."""
        if not self._leading:
            return
        self._leading = False
        try:
            async with self.kernel.connection() as conn:
                await conn.execute(
                    query("release_leadership"), {"duty": self.duty, "holder": self.holder}
                )
        except Exception:
            log.warning("could not release leadership of %s", self.duty, exc_info=True)
