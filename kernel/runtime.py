"""AgentHost: one process hosting N agent slots of one role.

The host registers its session and agents, keeps a listener on the job channel, and
whenever it has idle slots claims work (see dispatch.py), hands each claimed task or
activation to a handler coroutine, renews the leases of running work every lease/3,
heartbeats its session, and on stop releases the leases it still holds so the work
is ready again at once. What a handler does (an LLM loop, a no-op in benchmarks) is
the caller's business: the kernel only knows claims and leases.

Protocol: nothing claimed is forgotten
--------------------------------------
* Three coroutines talk to the database: the run loop (claims, on the dispatcher's own
  connection), the lease keeper (renewals, heartbeats) and the Finisher's writer (stage
  endings handed to AgentHost.finish or finish_soon, in batches), the last two on pooled
  connections. They share no connection, so a failure of one never breaks another's
  call in flight.
* An ending handed over with finish_soon frees its agent's slot at once (the agent may
  claim its next task meanwhile: two leases, each with its own token), and its lease is
  renewed with the running ones until the ending is written; a lost connection writes
  it again while the lease is still held, and shutdown waits for it before the session
  stops. A failed ending is handled as a handler failure would be.
* Every lease token the host was handed is remembered until its lease ends. When a
  claim fails in a way that may have committed (its reply was lost), the run loop at
  once lists the leases its session holds: a lease it never saw was given to it by the
  lost claim, and is resumed on its (free) agent, or released without spending an
  attempt when that agent is busy or the host is stopping. Jobs it picked but is not
  handling are queued again. The keeper repeats the look-up every lease/3 (under the
  same lock as claims), so a claim that commits on the server after its client gave up
  is found long before its lease could expire.
* The heartbeat answers whether the session still runs. A session the leader's reaper
  declared dead (the process froze past three lease periods) claims and renews nothing
  (enforced in SQL); the host stops its running work, releases what it still holds,
  and registers a new session before claiming again.
* A handler that fails because the database went away is run again, under the same
  lease, once the database answers and the lease is still held (a durable handler
  resumes from its last step); a release that must happen (stop, a lost claim for a
  busy agent) is retried until it does, and a release never spends an attempt. Any
  other handler failure spends the attempt: the task waits out a backoff, and fails
  with the reason after max_attempts (agentos.fail_attempt), so it cannot storm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from agentos.kernel import bus, errors, metrics, sessions, tasks
from agentos.kernel.db import Conn, Kernel
from agentos.kernel.dispatch import Activation, ClaimFailed, Dispatcher
from agentos.kernel.models import Task, TaskStatus
from agentos.sql import query

RENEW_RETRY_SECONDS = 0.25
log = logging.getLogger(__name__)

# How many times one piece of work is run again after the database went away under it.
MAX_DB_RERUNS = 5


@dataclass
class Work:
    """One unit handed to a handler: a leased task or an activation, for one agent."""

    agent: str
    task: Task | None = None
    activation: Activation | None = None
    lost: asyncio.Event = field(default_factory=asyncio.Event)  # set when the lease is taken away
    # set by AgentHost.finish_soon: the stage ending being written (and its arguments)
    ending: asyncio.Future[Task] | None = None
    ending_args: tuple[TaskStatus, str | None] = (TaskStatus.done, None)


Handler = Callable[[Kernel, Work], Awaitable[None]]

# The pool of a process hosting N agent slots: two connections per slot for a few slots,
# never more than HOST_POOL_MAX however many (a slot holds a connection only for a
# statement or a short transaction; LLM calls and tools run without one). With the
# host's listener and claim connection that is at most HOST_POOL_MAX + 2 per process.
HOST_POOL_MAX = 32


def host_pool_size(slots: int) -> int:
    """max_size of the pool of a process hosting `slots` agents."""
    return max(4, min(slots * 2 + 2, HOST_POOL_MAX))


# At most this many stage endings in one finish_tasks statement.
FINISH_BATCH = 256


@dataclass
class _Ending:
    task: Task
    actor: str
    to: TaskStatus
    result: str | None
    done: asyncio.Future[Task]


def _fields(work: Work, action: str) -> dict[str, object]:
    """The `extra=` of a log line about work: what happened, to which task, by whom."""
    out: dict[str, object] = {"action": action, "agent": work.agent}
    if work.task is not None:
        out["task"] = work.task.id
        out["attempt"] = work.task.attempts
    return out


class Finisher:
    """Group commit of stage endings: holders that finish while a batch is being written
    go in the next one, so N slots that finish together cost one statement, and a lone
    ending goes out at once (no added wait). Each ending checks its own token: a stale
    one fails with StaleLease for that holder alone.

    A batch is two statements: the endings (finish_tasks, durable), then, committed
    asynchronously, the agents set idle where they still point at the task they ended
    (a claim may have given them new work meanwhile). The endings themselves leave the
    agent rows alone, so a claim of the same agents' next work, on the dispatcher's
    connection, never waits for an ending's WAL flush.
    """

    def __init__(self, kernel: Kernel, *, role: str = "") -> None:
        self.kernel = kernel
        self.role = role
        self._pending: list[_Ending] = []
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0  # finish_tasks statements written (for benchmarks and tests)

    def submit(
        self, task: Task, *, actor: str, to: TaskStatus, result: str | None = None
    ) -> asyncio.Future[Task]:
        """Queue the holder's stage ending (to review, or done); the future is the task as
        written, or the error (StaleLease when the lease is no longer the holder's)."""
        fut: asyncio.Future[Task] = asyncio.get_running_loop().create_future()
        if task.lease_token is None:
            fut.set_exception(errors.StaleLease(f"task {task.id}: no lease held"))
            return fut
        self._pending.append(_Ending(task, actor, to, result, fut))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="agentos-finisher")
        return fut

    async def finish(
        self, task: Task, *, actor: str, to: TaskStatus, result: str | None = None
    ) -> Task:
        """End the holder's stage and wait until it is written."""
        return await self.submit(task, actor=actor, to=to, result=result)

    async def _write(self) -> None:
        while self._pending:
            batch = self._pending[:FINISH_BATCH]
            del self._pending[:FINISH_BATCH]
            try:
                await self._write_batch(batch)
            except BaseException as exc:  # handed to every waiter
                for e in batch:
                    if not e.done.done():
                        e.done.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise

    async def _write_batch(self, batch: list[_Ending]) -> None:
        params = {
            "ids": [e.task.id for e in batch],
            "tokens": [e.task.lease_token for e in batch],
            "to": [str(e.to) for e in batch],
            "actors": [e.actor for e in batch],
            "results": [e.result for e in batch],
        }
        try:
            async with self.kernel.connection() as conn:
                rows = await (await conn.execute(query("finish_tasks"), params)).fetchall()
            self.batches += 1
        except (errors.InvalidTransition, errors.BadInput, errors.NotFound):
            # one ending was refused (and the statement with it): end each on its own,
            # so the refusal reaches its holder only
            for e in batch:
                try:
                    async with self.kernel.connection() as conn:
                        done = await tasks.complete(
                            conn, e.task, actor=e.actor, to=e.to, result=e.result
                        )
                    e.done.set_result(done)
                except Exception as exc:
                    e.done.set_exception(exc)
            return
        by_id = {r["finished_id"]: r for r in rows}
        ended: list[_Ending] = []
        for e in batch:
            row = by_id.get(e.task.id)
            if row is not None and row["ok"]:
                ended.append(e)
                e.done.set_result(Task.model_validate(row))
                metrics.STAGE_ENDINGS.labels(self.role, str(e.to)).inc()
            else:
                e.done.set_exception(
                    errors.StaleLease(
                        f"task {e.task.id}: stale lease (the task was taken over or released)"
                    )
                )
        if ended:
            names = [e.actor for e in ended]
            free = {"names": names, "tasks": [e.task.id for e in ended]}

            async def run(conn: Conn) -> None:
                # a lost one leaves an agent shown busy, no work at stake: no WAL wait
                await conn.execute(query("commit_async"))
                await conn.execute(query("free_agents_of_tasks"), free)

            try:
                await self.kernel.retrying(run, what="agent status")
            except errors.KernelError as exc:
                log.warning(
                    "agents %s not set idle after their stage (%s); their next claim or "
                    "registration does",
                    ", ".join(names),
                    exc,
                )


class AgentHost:
    """Runs agent slots of one role in this process until stop()."""

    def __init__(
        self,
        kernel: Kernel,
        *,
        role: str,
        agents: list[str],
        handler: Handler,
        model: str | None = None,
        listener: bus.Listener | None = None,
        gate: Callable[[], bool] | None = None,
    ) -> None:
        self.kernel = kernel
        self.role = role
        self.agents = list(agents)  # may grow (add_agents) and shrink (drop_agent)
        self.handler = handler
        self.model = model
        self.gate = gate  # claim only while gate() is true (e.g. while leading)
        self.session_id: uuid.UUID | None = None
        self.listener = listener  # None: the kernel's shared one (Kernel.subscribe)
        self.wake: bus.Wake | None = None
        self.dispatcher: Dispatcher | None = None
        self.running: dict[str, tuple[Work, asyncio.Task[None]]] = {}
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()
        self.last_heartbeat_ok = 0.0
        # claims, lease look-ups and session changes never interleave
        self._claim_lock = asyncio.Lock()
        # every lease token handed to this host whose lease may still be held
        self._seen: set[uuid.UUID] = set()
        self._session_dead = False
        self.recovered = 0  # leases found after a lost claim reply (resumed or released)
        self.stale = 0  # work that found its lease gone (StaleLease)
        self.finisher = Finisher(kernel, role=role)
        metrics.SLOTS.labels(role).set(len(agents))
        metrics.SLOTS_BUSY.labels(role).set_function(lambda: len(self.running))
        # finish_soon endings not yet written, by lease token (renewed until they are)
        self.ending: dict[uuid.UUID, Work] = {}
        self._ending_tasks: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        """Ask run() to finish: running work is released, not abandoned."""
        self._stop.set()
        self.nudge()

    def nudge(self) -> None:
        """Look for work now (a slot came free, leadership was gained, ...)."""
        if self.wake is not None:
            self.wake.set()

    async def finish(
        self, work: Work, *, to: TaskStatus = TaskStatus.done, result: str | None = None
    ) -> Task:
        """End work's stage (to review or done) in the next batch of stage endings (see
        Finisher) and wait for it; raises StaleLease when the lease is no longer ours."""
        assert work.task is not None
        return await self.finisher.finish(work.task, actor=work.agent, to=to, result=result)

    def finish_soon(
        self, work: Work, *, to: TaskStatus = TaskStatus.done, result: str | None = None
    ) -> None:
        """End work's stage in the next batch without waiting: the handler returns, its
        agent slot takes new work at once, and the host keeps renewing the lease until
        the ending is written (as pgqueuer frees a slot before its completion is logged).
        A failed ending is handled as if the handler had raised it: StaleLease is logged,
        a lost connection writes it again while the lease is still held, anything else
        spends the attempt. Shutdown waits for endings not yet written."""
        assert work.task is not None
        work.ending = self.finisher.submit(work.task, actor=work.agent, to=to, result=result)
        work.ending_args = (to, result)

    def work_channels(self) -> list[str]:
        """The channels that announce work this host can take (its role and its agents)."""
        return [
            bus.work_channel(f"role:{self.role}"),
            *(bus.work_channel(f"agent:{a}") for a in self.agents),
        ]

    def add_agents(self, names: list[str]) -> None:
        """Host more agents from now on (the caller registered them with this session:
        kernel.roster.adopt); their work channels are listened to as well."""
        new = [n for n in names if n not in self.agents]
        self.agents.extend(new)
        if new and self.listener is not None:
            self.listener.add_channels([bus.work_channel(f"agent:{n}") for n in new])
            self.nudge()  # claim for them now, not at the next poll

    def drop_agent(self, name: str) -> bool:
        """Stop hosting an idle agent; False while it runs work (try again later)."""
        if name not in self.agents or name in self.running:
            return False
        self.agents.remove(name)
        return True

    @property
    def free_agents(self) -> list[str]:
        """Agents with no work right now."""
        return [a for a in self.agents if a not in self.running]

    async def _register(self) -> uuid.UUID:
        async def run(conn: Conn) -> uuid.UUID:
            return await sessions.register_session(
                conn,
                role=self.role,
                agents=self.agents,
                model=self.model,
                lease_seconds=self.kernel.settings.lease_seconds,
            )

        return await self.kernel.retrying(run, what="session registration")

    async def run(self) -> None:
        """Register, then claim and run work until stop()."""
        settings = self.kernel.settings
        async with self.kernel.connection() as conn:
            self.session_id = await sessions.register_session(
                conn,
                role=self.role,
                agents=self.agents,
                model=self.model,
                lease_seconds=self.kernel.settings.lease_seconds,
            )
        channels = [*self.work_channels(), bus.TASK]
        if self.listener is None:
            self.listener = await self.kernel.subscribe(channels)
        self.wake = self.listener.wake(channels)
        self.dispatcher = await Dispatcher(
            self.kernel, role=self.role, session_id=self.session_id
        ).open()
        keeper = asyncio.create_task(self._keep_alive(), name="agentos-lease-keeper")
        loop = asyncio.get_running_loop()
        self.last_heartbeat_ok = loop.time()
        self.ready.set()
        try:
            while not self._stop.is_set():
                if self._session_dead:
                    await self._rejoin()
                claimed_any = False
                if self.free_agents and (self.gate is None or self.gate()):
                    claimed_any = await self._claim()
                if claimed_any and self.free_agents:
                    continue  # there may be more ready work: claim again at once
                await self.wake.wait(settings.poll_interval)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await self._shutdown()

    async def _claim(self) -> bool:
        """One claim for the free agents; True when work was started."""
        assert self.dispatcher is not None
        async with self._claim_lock:
            if self._session_dead:
                return False
            try:
                claimed = await self.dispatcher.claim(self.free_agents)
            except ClaimFailed as exc:
                log.warning("%s", exc, extra={"action": "claim.failed"})
                if not exc.maybe_committed:
                    return False
                # Whatever the lost reply carried is ours: find it now, not after expiry.
                try:
                    started = await self._recover_leases(unpick=True)
                except errors.KernelError as exc2:
                    log.warning("lease look-up after a failed claim failed: %s", exc2)
                    return False
                return started > 0
            started = 0
            for agent, task in claimed.tasks:
                self._start(Work(agent=agent, task=task))
                started += 1
            for act in claimed.activations:
                self._start(Work(agent=act.agent, activation=act))
                started += 1
            return started > 0

    async def _recover_leases(self, *, unpick: bool = False, deadline: float | None = None) -> int:
        """Resume or release leases of this session the host never saw; the caller holds
        the claim lock. Returns how many were resumed."""
        assert self.dispatcher is not None
        held = await self.dispatcher.leases(deadline=deadline)
        current = {t.lease_token for t in held if t.lease_token is not None}
        self._seen &= current  # a lease that ended never comes back: forget its token
        resumed = 0
        for task in held:
            token = task.lease_token
            if token is None or token in self._seen:
                continue
            self.recovered += 1
            metrics.CLAIMS_RECOVERED.labels(self.role).inc()
            agent = task.lease_agent
            may_run = not self._stop.is_set() and (self.gate is None or self.gate())
            if may_run and agent in self.agents and agent not in self.running:
                log.warning(
                    "task %s: claim for %s was lost in transit; resuming it",
                    task.id,
                    agent,
                    extra={"action": "claim.recovered", "task": task.id},
                )
                assert agent is not None
                self._start(Work(agent=agent, task=task))
                resumed += 1
            else:
                log.warning(
                    "task %s: claim for %s was lost in transit; releasing it",
                    task.id,
                    agent,
                    extra={"action": "claim.released", "task": task.id},
                )
                self._seen.add(token)  # released below: never resumed by a later look-up
                await self._release(task, reason=f"{agent}: claim lost in transit")
        if unpick:
            keep = [
                w.activation.job_id for w, _ in self.running.values() if w.activation is not None
            ]
            await self.dispatcher.unpick(keep)
        return resumed

    def _start(self, work: Work) -> None:
        if work.task is not None and work.task.lease_token is not None:
            self._seen.add(work.task.lease_token)
        task = asyncio.create_task(self._run_work(work), name=f"agentos-work-{work.agent}")
        self.running[work.agent] = (work, task)

    async def _run_work(self, work: Work) -> None:
        try:
            reruns = 0
            while True:
                try:
                    await self.handler(self.kernel, work)
                    break
                except errors.DatabaseUnavailable as exc:
                    if work.task is None or reruns >= MAX_DB_RERUNS or self._stop.is_set():
                        raise
                    reruns += 1
                    log.warning(
                        "%s: task %s: the database went away (%s); running it again once "
                        "it answers",
                        work.agent,
                        work.task.id,
                        exc,
                        extra=_fields(work, "work.db_retry"),
                    )
                    if not await self._still_held(work):
                        log.warning("%s: task %s: lease lost meanwhile", work.agent, work.task.id)
                        work.lost.set()
                        return
            if work.activation is not None and self.dispatcher is not None:
                await self.dispatcher.ack([work.activation])
            if work.ending is not None:
                self._free_slot(work)  # the agent takes new work while its ending is written
                await self._await_ending(work)
            metrics.WORK.labels(self.role, "completed").inc()
        except asyncio.CancelledError:
            metrics.WORK.labels(self.role, "released").inc()
            raise
        except errors.StaleLease as exc:
            self.stale += 1
            metrics.WORK.labels(self.role, "lease_lost").inc()
            log.warning("%s lost its lease: %s", work.agent, exc, extra=_fields(work, "lease.lost"))
        except Exception as exc:
            metrics.WORK.labels(self.role, "failed").inc()
            log.exception("handler failed for %s", work.agent, extra=_fields(work, "work.failed"))
            if work.ending is not None and not work.ending.done():
                # retrieved here, so an ending that fails later is not reported twice
                work.ending.add_done_callback(lambda f: f.cancelled() or f.exception())
            if work.task is not None:
                first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
                await self._fail_attempt(
                    work.task, reason=f"{work.agent}: handler error: {type(exc).__name__} {first}"
                )
        finally:
            self._free_slot(work)

    def _free_slot(self, work: Work) -> None:
        """work's agent has no work now (unless it was already given new work)."""
        held = self.running.get(work.agent)
        if held is not None and held[0] is work:
            del self.running[work.agent]
            self.nudge()  # a slot is free: look for more work

    async def _await_ending(self, work: Work) -> None:
        """Wait for a finish_soon ending; its lease is renewed meanwhile (see _keep_alive)."""
        assert work.task is not None and work.task.lease_token is not None
        assert work.ending is not None
        token = work.task.lease_token
        self.ending[token] = work
        me = asyncio.current_task()
        if me is not None:
            self._ending_tasks.add(me)
        try:
            reruns = 0
            while True:
                try:
                    await work.ending
                    return
                except errors.DatabaseUnavailable as exc:
                    if reruns >= MAX_DB_RERUNS or self._stop.is_set():
                        raise
                    reruns += 1
                    log.warning(
                        "%s: task %s: the database went away (%s) while ending its stage; "
                        "writing it again once it answers",
                        work.agent,
                        work.task.id,
                        exc,
                        extra=_fields(work, "work.db_retry"),
                    )
                    if not await self._still_held(work):
                        # written before the connection went (or taken over): ours no more
                        log.warning(
                            "%s: task %s: lease no longer held; its ending was written or "
                            "the task was taken over",
                            work.agent,
                            work.task.id,
                        )
                        return
                    to, result = work.ending_args
                    work.ending = self.finisher.submit(
                        work.task, actor=work.agent, to=to, result=result
                    )
        finally:
            self.ending.pop(token, None)
            if me is not None:
                self._ending_tasks.discard(me)

    async def _still_held(self, work: Work) -> bool:
        """Wait (up to one lease) for the database; True when work's lease is still ours."""
        assert work.task is not None and work.task.lease_token is not None
        assert self.dispatcher is not None
        if work.lost.is_set():
            return False
        token = work.task.lease_token
        still = await self.dispatcher.renew([token])
        return token in still

    async def _release(self, task: Task, *, reason: str, deadline: float | None = None) -> None:
        """Give a lease back for real (retried over a blip); never spends an attempt."""

        async def run(conn: Conn) -> None:
            await tasks.release(conn, task, reason=reason)

        try:
            await self.kernel.retrying(run, deadline=deadline, what=f"release of task {task.id}")
        except errors.StaleLease:
            pass  # already ended (or released by an earlier try whose reply was lost)
        except errors.KernelError as exc:
            log.warning(
                "task %s: release failed (%s); its lease will expire and be rescued",
                task.id,
                exc,
            )

    async def _fail_attempt(self, task: Task, *, reason: str) -> None:
        """The work failed: the attempt counts, and the task waits out a backoff (or fails
        after max_attempts), so a handler that always fails cannot become a claim storm."""
        token = task.lease_token

        async def run(conn: Conn) -> None:
            await conn.execute(
                query("fail_attempt"), {"id": task.id, "token": token, "reason": reason}
            )

        try:
            await self.kernel.retrying(run, what=f"failing an attempt of task {task.id}")
        except errors.StaleLease:
            pass  # the lease ended meanwhile (or an earlier try went through)
        except errors.KernelError as exc:
            log.warning(
                "task %s: could not record the failure (%s); its lease will expire", task.id, exc
            )

    async def _keep_alive(self) -> None:
        """Renew leases and heartbeat every lease/3; look for lost claims meanwhile."""
        assert self.dispatcher is not None
        period = self.kernel.settings.lease_seconds / 3
        loop = asyncio.get_running_loop()
        delay = period
        while True:
            await asyncio.sleep(delay)
            try:
                held = {
                    w.task.lease_token: w
                    for w, _ in self.running.values()
                    if w.task is not None and w.task.lease_token is not None
                }
                held.update(self.ending)
                still = await self.dispatcher.renew(list(held), deadline=period)
                for token, work in held.items():
                    if token not in still:
                        work.lost.set()
            except errors.KernelError as exc:
                log.warning("lease renewal failed: %s", exc, extra={"action": "lease.renew"})
                # The database is away: renew again the moment it is back, not a whole
                # period later (a 4 s outage then cost the leases it had outlived).
                delay = min(RENEW_RETRY_SECONDS, period)
                continue
            delay = period
            try:
                session = self.session_id
                assert session is not None

                async def beat(conn: Conn, session: uuid.UUID = session) -> bool:
                    return await sessions.heartbeat(conn, session)

                alive = await self.kernel.retrying(beat, deadline=period, what="heartbeat")
                if alive:
                    self.last_heartbeat_ok = loop.time()
                elif not self._session_dead and session == self.session_id:
                    log.warning(
                        "session %s was declared dead (the process was frozen or cut off "
                        "past three lease periods); stopping its work and registering anew",
                        session,
                        extra={"action": "session.dead"},
                    )
                    self._session_dead = True
                    self.nudge()
            except errors.KernelError as exc:
                log.warning("heartbeat failed: %s", exc, extra={"action": "session.heartbeat"})
            try:
                async with self._claim_lock:
                    if not self._session_dead:
                        # bounded by the period: renewals must not wait behind it
                        await self._recover_leases(deadline=period)
            except errors.KernelError as exc:
                log.warning("lease look-up failed: %s", exc)

    async def _rejoin(self) -> None:
        """The session was declared dead: stop its work and register a new session."""
        assert self.dispatcher is not None
        async with self._claim_lock:
            await self._stop_all_work(reason="session declared dead")
            self.session_id = await self._register()
            self.dispatcher.session_id = self.session_id
            self._seen.clear()
            self._session_dead = False
        log.warning(
            "registered as session %s", self.session_id, extra={"action": "session.rejoined"}
        )

    async def _stop_all_work(self, *, reason: str, deadline: float | None = None) -> None:
        for work, task in list(self.running.values()):
            work.lost.set()
            if not task.done():
                what = f"task #{work.task.id}" if work.task is not None else "activation"
                log.warning(
                    "%s: %s lost: %s; its work is stopped",
                    work.agent,
                    what,
                    reason,
                    extra={"action": "agent.lost", "task": work.task.id if work.task else None},
                )
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            if work.task is not None:
                await self._release(work.task, reason=f"{work.agent} {reason}", deadline=deadline)
        self.running.clear()

    async def _shutdown(self) -> None:
        await self._stop_all_work(reason="shut down", deadline=5.0)
        if self._ending_tasks:
            # endings handed over before the stop are written, not released
            _, late = await asyncio.wait(set(self._ending_tasks), timeout=5.0)
            for t in late:
                t.cancel()
        if self.session_id is not None:
            with contextlib.suppress(Exception):
                async with self.kernel.connection() as conn:
                    await sessions.stop_session(
                        conn, self.session_id, actor=self.agents[0] if self.agents else self.role
                    )
        if self.dispatcher is not None:
            await self.dispatcher.close()
        if self.listener is not None and self.wake is not None:
            self.listener.drop(self.wake)  # the listener is the kernel's (or the caller's)
