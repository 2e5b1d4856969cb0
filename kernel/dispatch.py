"""Dispatch: activation jobs in pgqueuer, claimed with SKIP LOCKED, turned into leases.

Protocol
--------
Work for an agent is an *activation*: a pgqueuer job whose entrypoint names who may
take it (`role:worker`, `agent:worker-1`) and whose payload says what it is
(`{"kind": "task", "task_id": 7}`, `{"kind": "heartbeat"}`, ...). Task activations
are enqueued by triggers in the same transaction as the state change that makes the
task ready (see sql/001_init.sql), so there is never a ready task without its job,
nor a job without its cause.

1. claim: agentos.claim_work_v2 (sql/010, set-based in sql/012) takes, in one
   statement on pgqueuer's table, due jobs for the free agent slots with FOR UPDATE
   SKIP LOCKED, so concurrent claimers never take the same job: each free agent's own
   jobs first (at most one each), then the role's jobs on the agents left, then picked
   activations whose holder went quiet past pgqueuer's heartbeat timeout. In the same
   statement it leases each task job's task to its agent slot (a new attempt token, an
   expiry) if the task is still ready work for it (the named tasks locked together,
   leased in one UPDATE), and retires the task jobs into pgqueuer's log;
   a job whose task is no longer ready (cancelled, taken, dependencies not done) is
   simply retired: jobs are hints, the task row is the truth. A job whose task row
   another transaction is writing is left queued for the next claim (the claim waits
   for agent rows only, never for a task row).
2. batched: one claim serves every free slot of the host at once, so a host of N
   slots makes one round trip per claim however many tasks it gets.
3. lease: the holder renews its leases every lease/3; every write it makes carries
   the attempt token, and a write with a stale token is rejected (StaleLease).
4. rescue: the leader's sweeper returns expired leases to the queue with backoff
   (a new job, execute_after = backoff), or fails the task after max_attempts.
5. finish: holders that end their stage through the host (AgentHost.finish) are
   written in batches, one statement for every slot that finished meanwhile
   (agentos.finish_tasks, a group commit); each checks its own token.

Non-task activations are marked picked by the session and returned to the caller,
which acks them when handled; if the process dies first, the job is taken again once
it has been picked for longer than a lease (pgqueuer's heartbeat timeout).

One connection, one user. The dedicated connection serves claims only, from one
coroutine at a time (the host's run loop); renewals and acks go through the pool, so
nothing else can close it under a claim in flight. A claim that fails mid-way raises
ClaimFailed with `maybe_committed` set when the claim may have committed on the server
with its reply lost: the caller must then look up the leases of its session
(`leases()`) and resume or release what it was given, and `unpick()` the jobs of its
session it is not running. A session declared dead claims nothing (the SQL checks).
Locks: a claim locks its agent rows in id order before any task row (sql/003).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from agentos.kernel import errors
from agentos.kernel.db import Conn, Kernel, connection_lost
from agentos.kernel.models import Task
from agentos.sql import query


@dataclass
class Activation:
    """A non-task activation (heartbeat, message, ...) handed to an agent."""

    job_id: int
    kind: str
    agent: str
    entrypoint: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class Claimed:
    """What one dequeue produced: leased tasks (with their agent) and activations."""

    tasks: list[tuple[str, Task]] = field(default_factory=list)
    activations: list[Activation] = field(default_factory=list)
    dropped: int = 0


class ClaimFailed(errors.KernelError):
    """A claim did not complete; maybe_committed: the server may have leased tasks anyway."""

    def __init__(self, message: str, *, maybe_committed: bool, lost_connection: bool) -> None:
        super().__init__(message)
        self.maybe_committed = maybe_committed
        self.lost_connection = lost_connection


def role_entrypoint(role: str) -> str:
    """The entrypoint that carries work for any agent of a role."""
    return f"role:{role}"


def agent_entrypoint(agent: str) -> str:
    """The entrypoint that carries work for one named agent."""
    return f"agent:{agent}"


class Dispatcher:
    """Claims work for the agents of one role hosted by one session (process).

    Claims go through one dedicated autocommit connection that the Dispatcher owns.
    Call open() first and close() at the end.
    """

    def __init__(self, kernel: Kernel, *, role: str, session_id: uuid.UUID) -> None:
        self.kernel = kernel
        self.role = role
        self.session_id = session_id
        self.lease_seconds = kernel.settings.lease_seconds
        self._conn: Conn | None = None

    async def open(self) -> Dispatcher:
        """Open the dedicated connection."""
        self._conn = await self.kernel.connect(autocommit=True)
        # Dequeues, claims and renewals need not wait for their WAL flush: if the server
        # crashes before it, the job is queued again and the task is ready again (the
        # holder's next write fails as stale). Nothing is lost; a claim is just redone.
        await self._conn.execute("SET synchronous_commit = off")
        return self

    async def close(self) -> None:
        """Close the dedicated connection."""
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _ensure_open(self) -> Conn:
        if self._conn is None or self._conn.closed or self._conn.broken:
            await self.close()
            await self.open()
        assert self._conn is not None
        return self._conn

    async def claim(self, free_agents: list[str], now: dt.datetime | None = None) -> Claimed:
        """Take work for up to len(free_agents) agents and lease its tasks to them.

        Raises ClaimFailed (and drops the connection, reopened by the next claim) when
        anything goes wrong on the way; see the module docstring for what to do then.
        """
        if not free_agents:
            return Claimed()
        from agentos.kernel import metrics

        stage = ["connect"]
        t0 = time.perf_counter()
        try:
            got = await self._claim(free_agents, now, stage)
        except Exception as exc:
            metrics.CLAIM_FAILURES.labels(self.role).inc()
            await self.close()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ClaimFailed(
                f"claim failed during {stage[0]}: {first}",
                # claim_work leases tasks and marks activations picked: it may have
                # committed although its reply never came back
                maybe_committed=stage[0] != "connect",
                lost_connection=connection_lost(exc),
            ) from exc
        metrics.CLAIM_SECONDS.labels(self.role).observe(time.perf_counter() - t0)
        if got.tasks:
            metrics.CLAIMS.labels(self.role).inc(len(got.tasks))
        for act in got.activations:
            metrics.ACTIVATIONS.labels(self.role, act.kind).inc()
        return got

    async def _claim(
        self, free_agents: list[str], now: dt.datetime | None, stage: list[str]
    ) -> Claimed:
        out = Claimed()
        conn = await self._ensure_open()
        stage[0] = "claim_work"
        cur = await conn.execute(
            query("claim_work"),
            {
                "role": self.role,
                "agents": " ".join(free_agents),
                "session": self.session_id,
                "lease": self.lease_seconds,
                # a picked activation whose holder went quiet this long is taken again
                "stale": self.lease_seconds,
                "now": now,
            },
        )
        for row in await cur.fetchall():
            kind = row["claim_kind"]
            agent = row["claim_agent"]
            if kind == "task":
                out.tasks.append((agent, Task.model_validate(row)))
            elif kind == "activation":
                payload = row["claim_payload"] or {}
                out.activations.append(
                    Activation(
                        job_id=row["claim_job"],
                        kind=str(payload.get("kind", "unknown")),
                        agent=agent,
                        entrypoint=row["claim_entrypoint"],
                        payload=payload,
                    )
                )
            else:
                out.dropped += 1
        return out

    async def ack(self, activations: list[Activation], status: str = "successful") -> None:
        """Retire handled non-task activations into pgqueuer's log (pooled, retried)."""
        if not activations:
            return
        jobs = [a.job_id for a in activations]

        async def run(conn: Conn) -> None:
            await conn.execute(query("ack_jobs"), {"jobs": jobs, "status": status})

        await self.kernel.retrying(run, what="ack")

    async def renew(
        self,
        tokens: list[uuid.UUID],
        now: dt.datetime | None = None,
        *,
        deadline: float | None = None,
    ) -> set[uuid.UUID]:
        """Renew this session's leases; returns the tokens still held (pooled, retried)."""
        if not tokens:
            return set()
        params = {
            "session": self.session_id,
            "tokens": tokens,
            "lease": self.lease_seconds,
            "now": now,
        }

        async def run(conn: Conn) -> set[uuid.UUID]:
            cur = await conn.execute(query("renew_leases"), params)
            return {r["token"] for r in await cur.fetchall()}

        return await self.kernel.retrying(run, deadline=deadline, what="lease renewal")

    async def leases(self, *, deadline: float | None = None) -> list[Task]:
        """Every lease this session holds now (pooled, retried)."""

        async def run(conn: Conn) -> list[Task]:
            cur = await conn.execute(query("session_leases"), {"session": self.session_id})
            return [Task.model_validate(r) for r in await cur.fetchall()]

        return await self.kernel.retrying(run, deadline=deadline, what="lease look-up")

    async def unpick(self, keep: list[int]) -> int:
        """Queue again the jobs this session picked but is not handling (all but keep)."""

        async def run(conn: Conn) -> int:
            cur = await conn.execute(
                query("unpick_session_jobs"), {"session": self.session_id, "keep": keep}
            )
            return len(await cur.fetchall())

        return await self.kernel.retrying(run, what="job hand-back")
