"""LLM usage and budgets.

Protocol (budgets)
------------------
Before each LLM call the caller reserves an estimate on every scope that applies (the
task, and the agent for today) with agentos.reserve_budget: one locked UPDATE that
succeeds only if spent + reserved + estimate <= limit on every scope, so concurrent
agents cannot overshoot together. After the call, settle() swaps the reservation for
the actual cost (litellm's cost map) and the call is recorded in agentos.llm_calls.
A refused reservation is a BudgetExceeded naming the scope; the runtime then blocks
the task with the reason, and `agentos task retry ID --budget USD` raises the task's
budget and resumes it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from agentos.kernel import errors
from agentos.kernel.db import Conn, translated
from psycopg.types.json import Jsonb


class BudgetExceeded(errors.KernelError):
    """A reservation would exceed a budget."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"budget exhausted: {scope}")
        self.scope = scope


@dataclass(frozen=True)
class Reservation:
    """Scopes and the estimate reserved on them."""

    scopes: list[str]
    estimate: Decimal


def task_scope(task_id: int) -> str:
    """Budget scope of a task."""
    return f"task:{task_id}"


def agent_day_scope(agent: str, day: dt.date | None = None) -> str:
    """Budget scope of an agent for one UTC day."""
    return f"agent:{agent}:{(day or dt.datetime.now(dt.UTC).date()).isoformat()}"


@translated
async def reserve(conn: Conn, scopes: list[tuple[str, float]], estimate: float) -> Reservation:
    """Reserve estimate on every (scope, limit) or raise BudgetExceeded."""
    names = [s for s, _ in scopes]
    row = await (
        await conn.execute(
            "SELECT agentos.reserve_budget(%s, %s::numeric[], %s) AS breach",
            (names, [Decimal(str(lim)) for _, lim in scopes], Decimal(str(estimate))),
        )
    ).fetchone()
    if row is not None and row["breach"] is not None:
        raise BudgetExceeded(str(row["breach"]))
    return Reservation(names, Decimal(str(estimate)))


@translated
async def settle(conn: Conn, reservation: Reservation, actual: float) -> None:
    """Replace the reservation by the actual cost."""
    await conn.execute(
        "SELECT agentos.settle_budget(%s, %s, %s)",
        (reservation.scopes, reservation.estimate, Decimal(str(max(actual, 0.0)))),
    )


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
    """One row in agentos.llm_calls."""
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
            error,
        ),
    )


@translated
async def raise_task_budget(
    conn: Conn, task_id: int, budget_usd: float, *, actor: str = "cli"
) -> None:
    """Set a task's budget (and its budget row's limit) to budget_usd; audited."""
    if budget_usd <= 0:
        raise errors.BadInput("the budget must be positive")
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
