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
A schedule with a task template (`agentos schedule add NAME CRON --task TITLE`, migration
011) creates a task from it in step 3 instead of enqueueing an activation: the task's own
insert enqueues its work, and the run row records the task, all in the one transaction,
so a tick that fired has exactly one task and a task exists only for a tick that fired.
A template the task insert refuses (its assignee was removed, a psql edit) skips the
tick with a `schedule.task_error` activity; the schedule stays enabled.
The precondition is SQL written by whoever may write agentos.schedules. It is evaluated
by agentos.eval_precondition (sql/004_input_checks.sql), at add time and at every tick
alike: in a read-only (sub)transaction that is rolled back, with a statement timeout,
as one SELECT (a second statement is refused by the server), and with the privileges of
the NOLOGIN role agentos_precondition where the migration could create it (SELECT on
agentos tables, no file functions). Its errors are reported by SQLSTATE, with the
server's message only where that message can quote nothing but the expression itself.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

import psycopg
from agentos.kernel import errors, tasks
from agentos.kernel.db import Conn, Kernel, translated
from agentos.kernel.models import NAME_RE, ROLE_RE, Schedule, Task, one_line, plain_text
from agentos.sql import query
from croniter import CroniterError, croniter
from psycopg.types.json import Jsonb

log = logging.getLogger(__name__)

SCHEDULE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
ACTIVATION_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
MAX_CRON = 200
MAX_PRECONDITION = 4000
PRECONDITION_TIMEOUT = "2s"
# What a task template may hold: the fields of `task create` that make sense each tick
# (no parent or dependencies: those name one task, not one per tick).
TEMPLATE_FIELDS = frozenset(
    {
        "title",
        "description",
        "acceptance",
        "role",
        "assignee",
        "priority",
        "budget_usd",
        "max_attempts",
    }
)
TASK_ACTIVATION = "task"  # the activation column of a task schedule (shown by `list`)

# SQLSTATEs whose primary message names only parts of the expression (a token, a column,
# a function) or the rule broken: safe to show. Any other error (a failed cast, say) can
# quote data the expression read, e.g. a file through pg_read_file: only its code is shown.
_SAFE_STATES = {
    "42601": None,  # syntax error at or near "..."
    "42703": None,  # column "..." does not exist
    "42P01": None,  # relation "..." does not exist
    "42883": None,  # function ...(...) does not exist
    "42804": None,  # argument of IS TRUE must be type boolean, not type integer
    "42725": None,  # function ... is not unique
    "42501": None,  # permission denied for function pg_read_file
    "42P11": "it is not one expression (a second statement is not allowed)",
    "25006": "it tried to write; a precondition is read-only",
    "57014": f"it ran longer than {PRECONDITION_TIMEOUT}",
}


def next_tick(cron: str, after: dt.datetime) -> dt.datetime:
    """The first tick of cron strictly after `after` (UTC)."""
    nxt: dt.datetime = croniter(cron, after.astimezone(dt.UTC)).get_next(dt.datetime)
    return nxt


def validate_cron(cron: str, now: dt.datetime | None = None) -> str:
    """The expression, or BadInput with a one-line reason.

    An expression can be well-formed and still never match (`0 0 31 2 *`, the 31st of
    February): croniter only finds out when asked for the next tick, so ask it here.
    """
    try:
        cron = " ".join(one_line(cron).split())
    except ValueError as exc:
        raise errors.BadInput(f"bad cron expression: {exc}") from None
    example = "(e.g. '*/5 * * * *': minute hour day-of-month month day-of-week)"
    if not cron or len(cron) > MAX_CRON or not croniter.is_valid(cron):
        raise errors.BadInput(f"bad cron expression {cron[:MAX_CRON]!r} {example}")
    try:
        next_tick(cron, now or dt.datetime.now(dt.UTC))
    except (CroniterError, ValueError, OverflowError):
        raise errors.BadInput(f"cron expression {cron!r} never fires {example}") from None
    return cron


def precondition_error(exc: psycopg.Error) -> str:
    """A one-line reason a precondition failed that cannot leak what it read."""
    state = exc.sqlstate or "?????"
    if state in _SAFE_STATES:
        fixed = _SAFE_STATES[state]
        if fixed is not None:
            return fixed
        msg = (exc.diag.message_primary or "").strip().splitlines()
        if msg:
            return msg[0][:300]
    name = type(exc).__name__
    return f"it failed when evaluated (SQLSTATE {state}, {name})"


async def evaluate_precondition(conn: Conn, precondition: str) -> bool:
    """Evaluate a precondition read-only with a timeout; nothing it does is kept.

    Runs in a savepoint that is always rolled back, so it also works inside the caller's
    writing transaction (the tick being fired). Raises psycopg.Error on failure.
    """
    try:
        async with conn.transaction(force_rollback=True):
            await conn.execute("SET LOCAL transaction_read_only = on")
            await conn.execute(query("set_precondition_timeout"), {"timeout": PRECONDITION_TIMEOUT})
            row = await (
                await conn.execute(query("eval_precondition"), {"expr": precondition})
            ).fetchone()
    finally:
        # Session-level advisory locks survive a rollback; one taken by the expression
        # would otherwise stay held by this pooled connection.
        await conn.execute(query("unlock_precondition_locks"))
    return bool(row and row["ok"])


def _clean_precondition(precondition: str) -> str:
    try:
        precondition = plain_text(precondition).strip()
    except ValueError as exc:
        raise errors.BadInput(f"bad precondition: {exc}") from None
    if not precondition:
        raise errors.BadInput("bad precondition: it is empty (leave it out to always fire)")
    if len(precondition) > MAX_PRECONDITION:
        raise errors.BadInput(
            f"bad precondition: {len(precondition)} characters; the limit is {MAX_PRECONDITION}"
        )
    return precondition


async def _check_precondition(conn: Conn, precondition: str) -> None:
    try:
        await evaluate_precondition(conn, precondition)
    except psycopg.Error as exc:
        raise errors.BadInput(f"bad precondition: {precondition_error(exc)}") from None


def task_template(
    task: dict[str, Any], *, role: str | None = None, agent: str | None = None
) -> dict[str, Any]:
    """The template to store for a task schedule, checked as `task create` checks a task.

    `role` is the task's role (default worker) and `agent` its assignee; BadInput names
    the first problem.
    """
    unknown = sorted(set(task) - TEMPLATE_FIELDS)
    if unknown:
        raise errors.BadInput(
            f"a task template has no field {unknown[0]!r} "
            f"(fields: {', '.join(sorted(TEMPLATE_FIELDS))})"
        )
    fields = dict(task)
    if role is not None:
        fields["role"] = role
    if agent is not None:
        fields["assignee"] = agent
    new = tasks.validate_new_task(**fields)
    return new.model_dump(include=set(TEMPLATE_FIELDS), exclude_none=True)


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
    task: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> Schedule:
    """Store a schedule for a role or an agent (which must exist); nothing on bad input.

    With `task` (a template: title, description, acceptance, priority, budget_usd,
    max_attempts) each tick creates that task for `role` (default worker), or assigned
    to `agent`, instead of waking them.
    """
    now = now or dt.datetime.now(dt.UTC)
    try:
        name = one_line(name)
    except ValueError as exc:
        raise errors.BadInput(f"bad schedule name: {exc}") from None
    if not SCHEDULE_NAME_RE.match(name):
        raise errors.BadInput(
            f"bad schedule name {name[:100]!r} (letters, digits, . _ : -; at most 100)"
        )
    cron = validate_cron(cron, now)
    template: dict[str, Any] | None = None
    if task is not None:
        if activation != "heartbeat" or payload:
            raise errors.BadInput(
                "a task schedule creates a task; --activation does not go with --task"
            )
        template = task_template(task, role=role, agent=agent)
        activation = TASK_ACTIVATION
        # the target says who gets the work: the assignee, else the task's role
        role = None if agent is not None else template["role"]
    if (role is None) == (agent is None):
        raise errors.BadInput("give exactly one of --role or --agent")
    if role is not None and not ROLE_RE.match(role):
        raise errors.BadInput(f"bad role name {role!r} (lowercase letters, digits, - and _)")
    if agent is not None and not NAME_RE.match(agent):
        raise errors.BadInput(f"no agent {agent!r} (see `agentos agent list`)")
    if not ACTIVATION_RE.match(activation):
        raise errors.BadInput(f"bad activation {activation!r} (lowercase letters, digits, . _ -)")
    if precondition is not None:
        precondition = _clean_precondition(precondition)
        await _check_precondition(conn, precondition)
    async with conn.transaction():
        if (
            agent is not None
            and not await (await conn.execute(query("agent_exists"), {"name": agent})).fetchone()
        ):
            raise errors.BadInput(
                f"no agent {agent!r} (see `agentos agent list`; or schedule its role with --role)"
            )
        if await schedule_exists(conn, name):
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
                    "task_template": None if template is None else Jsonb(template),
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


async def _disable(conn: Conn, sched: Schedule, reason: str) -> None:
    log.warning(
        "schedule %s disabled: %s", sched.name, reason, extra={"action": "schedule.disabled"}
    )
    await conn.execute(query("disable_schedule"), {"schedule": sched.id})
    await conn.execute(
        query("record_activity"),
        {
            "kind": "schedule.disabled",
            "task": None,
            "message": f"{sched.name}: disabled, {reason}",
            "data": Jsonb({"schedule": sched.name, "cron": sched.cron}),
            "actor": "kernel",
        },
    )


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
                try:
                    following = next_tick(sched.cron, max(now, sched.next_fire_at))
                except (CroniterError, ValueError, OverflowError, KeyError):
                    # Stored by psql, or by a croniter that parsed more: never fires again.
                    # Disable it (said in the log) rather than fail every tick of the loop.
                    await _disable(conn, sched, "its cron expression never fires")
                    handled.append((sched.name, False))
                    continue
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
                        {"schedule": sched.id, "tick": sched.next_fire_at, "next": following},
                    )
                    continue
                fired = True
                if sched.precondition:
                    try:
                        fired = await evaluate_precondition(conn, sched.precondition)
                    except psycopg.Error as exc:
                        fired = False
                        reason = precondition_error(exc)
                        log.warning(
                            "schedule %s: precondition failed, tick skipped: %s",
                            sched.name,
                            reason,
                            extra={"action": "schedule.precondition_error"},
                        )
                        await conn.execute(
                            query("record_activity"),
                            {
                                "kind": "schedule.precondition_error",
                                "task": None,
                                "message": f"{sched.name}: precondition failed, tick skipped: "
                                f"{reason}",
                                "data": Jsonb({"schedule": sched.name, "sqlstate": exc.sqlstate}),
                                "actor": "kernel",
                            },
                        )
                job: int | None = None
                task_id: int | None = None
                what = f"{sched.activation} for {sched.target_role or sched.target_agent}"
                if fired and sched.task_template is not None:
                    task = await _create_task(conn, sched)
                    fired = task is not None
                    if task is not None:
                        task_id = task.id
                        what = f"created task #{task.id} {task.title}"
                elif fired:
                    job = await _enqueue(conn, sched)
                if fired:
                    await conn.execute(
                        query("mark_schedule_run_fired"),
                        {
                            "schedule": sched.id,
                            "tick": sched.next_fire_at,
                            "job": job,
                            "task": task_id,
                        },
                    )
                    await conn.execute(
                        query("record_activity"),
                        {
                            "kind": "schedule.fired",
                            "task": task_id,
                            "message": f"{sched.name}: {what}",
                            "data": Jsonb(
                                {
                                    "schedule": sched.name,
                                    "tick": sched.next_fire_at.isoformat(),
                                    "job": job,
                                    "task": task_id,
                                }
                            ),
                            "actor": "kernel",
                        },
                    )
                await conn.execute(
                    query("advance_schedule"),
                    {"schedule": sched.id, "tick": sched.next_fire_at, "next": following},
                )
                handled.append((sched.name, fired))
    return handled


async def _enqueue(conn: Conn, sched: Schedule) -> int | None:
    """Queue a tick's activation for its role or agent; the job id."""
    entry = f"role:{sched.target_role}" if sched.target_role else f"agent:{sched.target_agent}"
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
    return int(row["job"]) if row and row["job"] is not None else None


async def _create_task(conn: Conn, sched: Schedule) -> Task | None:
    """Create a tick's task from the template (in the tick's transaction); None if refused.

    The insert runs in a savepoint: a template the task insert refuses rolls back only
    that, the tick is recorded as not fired with the reason, and the other due schedules
    of this round still fire.
    """
    assert sched.task_template is not None
    tick = sched.next_fire_at.isoformat()
    fields = {k: v for k, v in sched.task_template.items() if k in TEMPLATE_FIELDS}
    try:
        task = await tasks.create_task(
            conn,
            created_by=f"schedule:{sched.name}",
            metadata={"schedule": sched.name, "tick": tick},
            **fields,
        )
    except (
        errors.BadInput,
        errors.NotFound,
        errors.InvalidTransition,
        psycopg.DataError,
        psycopg.IntegrityError,
    ) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.warning(
            "schedule %s: the task could not be created, tick skipped: %s",
            sched.name,
            reason,
            extra={"action": "schedule.task_error"},
        )
        await conn.execute(
            query("record_activity"),
            {
                "kind": "schedule.task_error",
                "task": None,
                "message": f"{sched.name}: the task could not be created, tick skipped: {reason}",
                "data": Jsonb({"schedule": sched.name, "tick": tick}),
                "actor": "kernel",
            },
        )
        return None
    return task


@translated
async def schedule_exists(conn: Conn, name: str) -> bool:
    """Whether a schedule of that name exists."""
    row = await (await conn.execute(query("schedule_exists"), {"name": name})).fetchone()
    return bool(row and row["found"])
