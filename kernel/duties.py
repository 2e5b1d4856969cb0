"""Singleton duties, run by whichever process leads (see leader.py).

Every process that runs a KernelDuties competes for the "kernel" duty (its Leadership
keeps the lease at its own cadence: every poll interval, at most ttl/3); the leader, and only the leader, each poll
interval: rescues expired leases (which also returns the
budget reservations made under them), fires due schedules, reaps dead sessions, returns
budget reservations whose session died or time ran out, and (every few seconds)
re-enqueues ready tasks whose job was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from agentos.kernel import usage
from agentos.kernel.db import Kernel
from agentos.kernel.leader import Leadership
from agentos.kernel.schedules import fire_due
from agentos.sql import query

log = logging.getLogger(__name__)


async def _first(*aws: Any) -> None:
    """Return when the first of these awaitables is done (the others are cancelled)."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()


class KernelDuties:
    """The leader's periodic work; run() until stop()."""

    def __init__(self, kernel: Kernel, holder: uuid.UUID, *, interval: float | None = None) -> None:
        self.kernel = kernel
        self.interval = interval or kernel.settings.poll_interval
        self.leadership = Leadership(
            kernel, "kernel", holder, kernel.settings.leader_ttl_seconds, period=self.interval
        )
        self._stop = asyncio.Event()
        self._last_orphan_check = 0.0

    def stop(self) -> None:
        """Ask run() to return after releasing leadership."""
        self._stop.set()

    async def run(self) -> None:
        """Until stop(): hold (or wait for) the leadership; while leading, do the duties
        each poll interval (at once when leadership is gained)."""
        gained = asyncio.Event()
        lease = asyncio.create_task(
            self.leadership.run(self._stop, on_gain=gained.set), name="agentos-kernel-lease"
        )
        try:
            while not self._stop.is_set():
                if self.leadership.is_leader:
                    try:
                        await self.run_once()
                    except Exception:
                        log.exception("kernel duty failed")
                gained.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        _first(self._stop.wait(), gained.wait()), timeout=self.interval
                    )
        finally:
            self._stop.set()
            await lease  # releases the lease

    async def run_once(self) -> dict[str, int]:
        """One round of duties (the caller must lead)."""
        done = {
            "rescued": 0,
            "failed": 0,
            "schedules": 0,
            "reaped": 0,
            "requeued": 0,
            "reservations": 0,
        }
        async with self.kernel.connection() as conn:
            rows = await (
                await conn.execute(query("rescue_expired_leases"), {"now": None})
            ).fetchall()
        from agentos.kernel import metrics

        for r in rows:
            done["failed" if r["outcome"] == "failed" else "rescued"] += 1
            metrics.LEASE_RESCUES.labels("failed" if r["outcome"] == "failed" else "retried").inc()
            log.info(
                "task %s: lease expired, %s",
                r["task_id"],
                r["outcome"],
                extra={"action": "lease.rescue", "task": r["task_id"]},
            )
        done["schedules"] = len(await fire_due(self.kernel))
        async with self.kernel.connection() as conn:
            reaped = await (
                await conn.execute(query("reap_dead_sessions"), {"now": None})
            ).fetchall()
            done["reaped"] = len(reaped)
            if reaped:
                metrics.SESSIONS_REAPED.inc(len(reaped))
            # after the reaping: a dead session's reservations go in the same round
            done["reservations"] = await usage.expire_reservations(conn)
            if done["reservations"]:
                log.info(
                    "returned %s budget reservation(s) of gone holders",
                    done["reservations"],
                    extra={"action": "budget.expire"},
                )
            if time.monotonic() - self._last_orphan_check > 5:
                self._last_orphan_check = time.monotonic()
                row = await (await conn.execute(query("requeue_orphans"))).fetchone()
                done["requeued"] = int(row["requeued"]) if row else 0
        return done
