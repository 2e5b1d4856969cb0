"""Leader election: a lease row per duty in agentos.leader_leases.

Protocol
--------
         acquire ok                      renew ok (every ttl/3)
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

import datetime as dt
import logging
import uuid

from agentos.kernel.db import Kernel
from agentos.sql import query

log = logging.getLogger(__name__)


class Leadership:
    """Holds (or tries to hold) the lease of one duty for one holder id."""

    def __init__(self, kernel: Kernel, duty: str, holder: uuid.UUID, ttl: float) -> None:
        self.kernel = kernel
        self.duty = duty
        self.holder = holder
        self.ttl = ttl
        self.is_leader = False

    async def tick(self, now: dt.datetime | None = None) -> bool:
        """Acquire or renew; returns whether we lead now."""
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
        if leading != self.is_leader:
            log.info(
                "%s leadership of %s",
                "took" if leading else "lost",
                self.duty,
                extra={"action": "leader.change", "duty": self.duty},
            )
        self.is_leader = leading
        return leading

    async def release(self) -> None:
        """Give the duty up (shutdown): another process can take it at once."""
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            async with self.kernel.connection() as conn:
                await conn.execute(
                    query("release_leadership"), {"duty": self.duty, "holder": self.holder}
                )
        except Exception:
            log.warning("could not release leadership of %s", self.duty, exc_info=True)
