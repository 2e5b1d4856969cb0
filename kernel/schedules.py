"""Cron schedules that fire activations, exactly once per tick across any number of processes.

Protocol
--------
Each schedule stores its next tick (`next_fire_at`). The leader's duty loop selects due
schedules FOR UPDATE SKIP LOCKED and, in one transaction per schedule:
  1. inserts (schedule_id, tick) into agentos.schedule_runs: the primary key makes a
     tick fire at most once even if two leaders overlapped for a moment;
  2. evaluates the optional SQL precondition (read-only, with a statement timeout):
     a heartbeat whose precondition finds no work costs nothing;
  3. enqueues the activation (a pgqueuer job for `role:R` or `agent:A`);
  4. advances next_fire_at past now: missed ticks (the system was down) collapse
     into one, they are not replayed.
The precondition is SQL written by whoever may write agentos.schedules; it runs with
the kernel's database role, read-only.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import psycopg
from agentos.kernel import errors
from agentos.kernel.db import Conn, Kernel, translated
from agentos.kernel.models import NAME_RE, ROLE_RE, Schedule
from agentos.sql import query
from croniter import croniter
from psycopg import sql as pgsql
from psycopg.types.json import Jsonb

log = logging.getLogger(__name__)


def next_tick(cron: str, after: dt.datetime) -> dt.datetime:
    """The first tick of cron strictly after `after` (UTC)."""
    nxt: dt.datetime = croniter(cron, after.astimezone(dt.UTC)).get_next(dt.datetime)
    return nxt


def validate_cron(cron: str) -> str:
    """The expression, or BadInput with a one-line reason."""
    cron = " ".join(cron.split())
    if not croniter.is_valid(cron):
        raise errors.BadInput(f"bad cron expression {cron!r} (e.g. '*/5 * * * *')")
    return cron


async def _check_precondition(conn: Conn, precondition: str) -> None:
    try:
        async with conn.transaction(force_rollback=True):
            await conn.execute("SET TRANSACTION READ ONLY")
            await conn.execute("SET LOCAL statement_timeout = '2s'")
            await conn.execute(
                pgsql.SQL("SELECT ({})::boolean AS ok").format(pgsql.SQL(precondition))
            )
    except psycopg.Error as exc:
        msg = (exc.diag.message_primary or str(exc)).splitlines()[0]
        raise errors.BadInput(f"bad precondition: {msg}") from exc


@translated
async def add_schedule(
    conn: Conn,
    *,
    name: str,
    cron: str,
    role: str | None = None,
    agent: str | None = None,
    activation: str = "heartbeat",
    payload: dict[str, Any] | None = None,
    precondition: str | None = None,
    now: dt.datetime | None = None,
) -> Schedule:
    """Store a schedule for a role or an agent."""
    cron = validate_cron(cron)
    if (role is None) == (agent is None):
        raise errors.BadInput("give exactly one of --role or --agent")
    if role is not None and not ROLE_RE.match(role):
        raise errors.BadInput(f"bad role name {role!r}")
    if agent is not None and not NAME_RE.match(agent):
        raise errors.BadInput(f"bad agent name {agent!r}")
    if precondition is not None:
        await _check_precondition(conn, precondition)
    now = now or dt.datetime.now(dt.UTC)
    async with conn.transaction():
        if await (
            await conn.execute("SELECT 1 FROM agentos.schedules WHERE name = %s", (name,))
        ).fetchone():
            raise errors.BadInput(f"a schedule named {name!r} exists")
        row = await (
            await conn.execute(
                query("insert_schedule"),
                {
                    "name": name,
                    "cron": cron,
                    "target_role": role,
                    "target_agent": agent,
                    "activation": activation,
                    "payload": Jsonb(payload or {}),
                    "precondition": precondition,
                    "next_fire_at": next_tick(cron, now),
                },
            )
        ).fetchone()
    return Schedule.model_validate(row)


@translated
async def list_schedules(conn: Conn) -> list[Schedule]:
    """Every schedule, by name."""
    rows = await (await conn.execute(query("list_schedules"))).fetchall()
    return [Schedule.model_validate(r) for r in rows]


@translated
async def remove_schedule(conn: Conn, key: str) -> Schedule:
    """Delete a schedule by name or id."""
    row = await (await conn.execute(query("delete_schedule"), {"key": key})).fetchone()
    if row is None:
        raise errors.NotFound(f"no schedule {key!r}")
    return Schedule.model_validate(row)


@translated
async def fire_due(kernel: Kernel, now: dt.datetime | None = None) -> list[tuple[str, bool]]:
    """Fire every due tick once; returns (schedule name, fired?) per tick handled."""
    handled: list[tuple[str, bool]] = []
    async with kernel.connection() as conn:
        now = now or (await (await conn.execute("SELECT now() AS now")).fetchone() or {})["now"]
        assert now is not None
        async with conn.transaction():
            due = [
                Schedule.model_validate(r)
                for r in await (await conn.execute(query("due_schedules"), {"now": now})).fetchall()
            ]
            for sched in due:
                # Claim the tick first: if it was already fired, only advance.
                claimed = await (
                    await conn.execute(
                        query("insert_schedule_run"),
                        {
                            "schedule": sched.id,
                            "tick": sched.next_fire_at,
                            "fired": False,
                            "job": None,
                        },
                    )
                ).fetchone()
                if claimed is None:
                    await conn.execute(
                        query("advance_schedule"),
                        {
                            "schedule": sched.id,
                            "tick": sched.next_fire_at,
                            "next": next_tick(sched.cron, max(now, sched.next_fire_at)),
                        },
                    )
                    continue
                fired = True
                if sched.precondition:
                    try:
                        async with conn.transaction():
                            await conn.execute("SET LOCAL statement_timeout = '2s'")
                            row = await (
                                await conn.execute(
                                    pgsql.SQL("SELECT coalesce(({})::boolean, false) AS ok").format(
                                        pgsql.SQL(sched.precondition)
                                    )
                                )
                            ).fetchone()
                            fired = bool(row and row["ok"])
                            await conn.execute("SET LOCAL statement_timeout = 0")
                    except psycopg.Error as exc:
                        fired = False
                        log.warning(
                            "schedule %s: precondition failed: %s",
                            sched.name,
                            exc,
                            extra={"action": "schedule.precondition_error"},
                        )
                job = None
                if fired:
                    entry = (
                        f"role:{sched.target_role}"
                        if sched.target_role
                        else f"agent:{sched.target_agent}"
                    )
                    row = await (
                        await conn.execute(
                            query("enqueue_activation"),
                            {
                                "entrypoint": entry,
                                "kind": sched.activation,
                                "payload": Jsonb(
                                    {
                                        **sched.payload,
                                        "schedule": sched.name,
                                        "tick": sched.next_fire_at.isoformat(),
                                    }
                                ),
                                "priority": 0,
                                "dedupe_key": f"schedule:{sched.id}",
                            },
                        )
                    ).fetchone()
                    job = row["job"] if row else None
                    await conn.execute(
                        "UPDATE agentos.schedule_runs SET fired = true, job_id = %s "
                        "WHERE schedule_id = %s AND tick = %s",
                        (job, sched.id, sched.next_fire_at),
                    )
                if fired:
                    await conn.execute(
                        query("record_activity"),
                        {
                            "kind": "schedule.fired",
                            "task": None,
                            "message": f"{sched.name}: {sched.activation} for "
                            f"{sched.target_role or sched.target_agent}",
                            "data": Jsonb(
                                {
                                    "schedule": sched.name,
                                    "tick": sched.next_fire_at.isoformat(),
                                    "job": job,
                                }
                            ),
                            "actor": "kernel",
                        },
                    )
                await conn.execute(
                    query("advance_schedule"),
                    {
                        "schedule": sched.id,
                        "tick": sched.next_fire_at,
                        "next": next_tick(sched.cron, max(now, sched.next_fire_at)),
                    },
                )
                handled.append((sched.name, fired))
    return handled
