"""LLM usage and budgets.

Protocol (budgets)
------------------
Before each LLM call the caller reserves an estimate on every scope that applies (the
task, and the agent for today) with agentos.reserve_budget_v2: one locked UPDATE that
succeeds only if spent + reserved + estimate <= limit on every scope, so concurrent
agents cannot overshoot together. After the call, settle() swaps the reservation for
the actual cost (litellm's cost map) and the call is recorded in agentos.llm_calls.
A refused reservation is a BudgetExceeded naming the scope; the runtime then blocks
the task with the reason, and `agentos task retry ID --budget USD` raises the task's
budget and resumes it.

A reservation is a row (agentos.budget_reservations) bound to what makes it live: the
current lease of its task, the session of its agent, and a time limit (`ttl`). A
process that dies between reserving and settling leaves nothing behind for long: the
rescuer that ends the dead holder's lease returns the reservation in the same
transaction (a trigger on the lease), and the leader's sweeper returns reservations
whose session died or whose time ran out (expire_reservations). Settling a reservation
that was already returned adds the actual cost only, so nothing is counted twice.
Amounts must be finite and >= 0 (NaN compares greater than every number in SQL).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal

from agentos.kernel import errors, redact
from agentos.kernel.db import Conn, translated
from agentos.sql import query
from psycopg.types.json import Jsonb

# A reservation with no lease or session to end it lasts at most this long (an LLM
# call, with its retries and fallbacks, ends well within it).
DEFAULT_RESERVATION_TTL = 3600.0


class BudgetExceeded(errors.KernelError):
    """A reservation would exceed a budget."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"budget exhausted: {scope}")
        self.scope = scope


@dataclass(frozen=True)
class Reservation:
    """Scopes and the estimate reserved on them; id names its row (None: made before 003)."""

    scopes: list[str]
    estimate: Decimal
    id: int | None = None


def _amount(value: float, what: str) -> Decimal:
    if not math.isfinite(value) or value < 0:
        raise errors.BadInput(f"{what} must be a finite amount >= 0, not {value}")
    return Decimal(str(value))


def task_scope(task_id: int) -> str:
    """Budget scope of a task."""
    return f"task:{task_id}"


def agent_day_scope(agent: str, day: dt.date | None = None) -> str:
    """Budget scope of an agent for one UTC day."""
    return f"agent:{agent}:{(day or dt.datetime.now(dt.UTC).date()).isoformat()}"


@translated
async def reserve(
    conn: Conn,
    scopes: list[tuple[str, float]],
    estimate: float,
    *,
    ttl: float = DEFAULT_RESERVATION_TTL,
    wait_for_flush: bool = True,
) -> Reservation:
    """Reserve estimate on every (scope, limit) or raise BudgetExceeded.

    With wait_for_flush=False the transaction commits without waiting for its WAL
    flush: for a reservation made on its own, whose loss in a server crash only frees
    the estimate (the settle after the call adds the cost all the same)."""
    names = [s for s, _ in scopes]
    amount = _amount(estimate, "a budget estimate")
    limits = [_amount(lim, f"the budget of {name}") for name, lim in scopes]
    row = await (
        await conn.execute(
            query("reserve_budget"),
            {
                "scopes": names,
                "limits": limits,
                "estimate": amount,
                "ttl": ttl,
                "sync": None if wait_for_flush else "off",
            },
        )
    ).fetchone()
    if row is not None and row["breach"] is not None:
        raise BudgetExceeded(str(row["breach"]))
    return Reservation(names, amount, row["reservation"] if row is not None else None)


@translated
async def settle(conn: Conn, reservation: Reservation, actual: float) -> None:
    """Replace the reservation by the actual cost."""
    # a negative cost (a refund in the cost map) counts as nothing; NaN is refused
    cost = _amount(actual if math.isnan(actual) else max(actual, 0.0), "a cost")
    if reservation.id is None:
        await conn.execute(
            query("settle_budget"),
            {"scopes": reservation.scopes, "estimate": reservation.estimate, "actual": cost},
        )
        return
    await conn.execute(
        query("settle_reservation"),
        {"id": reservation.id, "scopes": reservation.scopes, "actual": cost},
    )


@translated
async def expire_reservations(conn: Conn, now: dt.datetime | None = None) -> int:
    """Return reservations whose lease ended, session died or time ran out; how many."""
    row = await (await conn.execute(query("expire_budget_reservations"), {"now": now})).fetchone()
    return int(row["expired"]) if row is not None else 0


@translated
async def record_call(
    conn: Conn,
    *,
    agent: str,
    role: str,
    task_id: int | None,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    cost_usd: float,
    latency_ms: int,
    outcome: str,
    error: str | None = None,
) -> None:
    """One row in agentos.llm_calls (and the process's LLM counters, kernel/metrics.py)."""
    from agentos.kernel import metrics

    metrics.observe_llm_call(
        agent=agent,
        model=model,
        outcome=outcome,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=cost_usd,
    )
    await conn.execute(
        "INSERT INTO agentos.llm_calls (agent, role, task_id, model, prompt_tokens, "
        "completion_tokens, cost_usd, latency_ms, outcome, error) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            agent,
            role,
            task_id,
            model,
            prompt_tokens,
            completion_tokens,
            Decimal(str(cost_usd)),
            latency_ms,
            outcome,
            redact.redact(error),
        ),
    )


@translated
async def raise_task_budget(
    conn: Conn, task_id: int, budget_usd: float, *, actor: str = "cli"
) -> None:
    """Set a task's budget (and its budget row's limit) to budget_usd; audited."""
    if not math.isfinite(budget_usd) or budget_usd <= 0:
        raise errors.BadInput("the budget must be a positive finite amount")
    cur = await conn.execute(
        "UPDATE agentos.tasks SET budget_usd = %s WHERE id = %s RETURNING id",
        (Decimal(str(budget_usd)), task_id),
    )
    if await cur.fetchone() is None:
        raise errors.NotFound(f"no task {task_id}")
    await conn.execute(
        "UPDATE agentos.budgets SET limit_usd = %s, updated_at = now() WHERE scope = %s",
        (Decimal(str(budget_usd)), task_scope(task_id)),
    )
    await conn.execute(
        "SELECT agentos.record_activity('task.budget', %s, %s, %s, %s)",
        (
            task_id,
            f"budget set to ${budget_usd} by {actor}",
            Jsonb({"budget_usd": str(budget_usd)}),
            actor,
        ),
    )
