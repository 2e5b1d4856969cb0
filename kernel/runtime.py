"""AgentHost: one process hosting N agent slots of one role.

The host registers its session and agents, keeps a listener on the job channel, and
whenever it has idle slots claims work (see dispatch.py), hands each claimed task or
activation to a handler coroutine, renews the leases of running work every lease/3,
heartbeats its session, and on stop releases the leases it still holds so the work
is ready again at once. What a handler does (an LLM loop, a no-op in benchmarks) is
the caller's business: the kernel only knows claims and leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from agentos.kernel import bus, errors, sessions, tasks
from agentos.kernel.db import Kernel
from agentos.kernel.dispatch import Activation, Dispatcher
from agentos.kernel.models import Task

log = logging.getLogger(__name__)


@dataclass
class Work:
    """One unit handed to a handler: a leased task or an activation, for one agent."""

    agent: str
    task: Task | None = None
    activation: Activation | None = None
    lost: asyncio.Event = field(default_factory=asyncio.Event)  # set when the lease is taken away


Handler = Callable[[Kernel, Work], Awaitable[None]]


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
        if not agents:
            raise errors.BadInput("an agent host needs at least one agent")
        self.kernel = kernel
        self.role = role
        self.agents = agents
        self.handler = handler
        self.model = model
        self.gate = gate  # claim only while gate() is true (e.g. while leading)
        self.session_id: uuid.UUID | None = None
        self.listener = listener
        self._own_listener = listener is None
        self.dispatcher: Dispatcher | None = None
        self.running: dict[str, tuple[Work, asyncio.Task[None]]] = {}
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()
        self.last_heartbeat_ok = 0.0

    def stop(self) -> None:
        """Ask run() to finish: running work is released, not abandoned."""
        self._stop.set()
        if self.listener is not None:
            self.listener.woken.set()

    def work_channels(self) -> list[str]:
        """The channels that announce work this host can take (its role and its agents)."""
        return [
            bus.work_channel(f"role:{self.role}"),
            *(bus.work_channel(f"agent:{a}") for a in self.agents),
        ]

    @property
    def free_agents(self) -> list[str]:
        """Agents with no work right now."""
        return [a for a in self.agents if a not in self.running]

    async def run(self) -> None:
        """Register, then claim and run work until stop()."""
        settings = self.kernel.settings
        async with self.kernel.connection() as conn:
            self.session_id = await sessions.register_session(
                conn, role=self.role, agents=self.agents, model=self.model
            )
        if self.listener is None:
            self.listener = bus.Listener(self.kernel.url, self.work_channels())
            await self.listener.start()
        self.dispatcher = await Dispatcher(
            self.kernel, role=self.role, session_id=self.session_id
        ).open()
        keeper = asyncio.create_task(self._keep_alive(), name="agentos-lease-keeper")
        loop = asyncio.get_running_loop()
        self.last_heartbeat_ok = loop.time()
        self.ready.set()
        try:
            while not self._stop.is_set():
                claimed_any = False
                if self.free_agents and (self.gate is None or self.gate()):
                    try:
                        claimed = await self.dispatcher.claim(self.free_agents)
                    except errors.KernelError as exc:
                        log.warning("claim failed: %s", exc)
                        claimed = None
                    except Exception as exc:
                        log.warning("claim failed: %s", exc)
                        claimed = None
                        await self.dispatcher.close()
                    if claimed is not None:
                        for agent, task in claimed.tasks:
                            self._start(Work(agent=agent, task=task))
                            claimed_any = True
                        for act in claimed.activations:
                            self._start(Work(agent=act.agent, activation=act))
                            claimed_any = True
                if claimed_any and self.free_agents:
                    continue  # there may be more ready work: claim again at once
                await self.listener.wait(settings.poll_interval)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await self._shutdown()

    def _start(self, work: Work) -> None:
        task = asyncio.create_task(self._run_work(work), name=f"agentos-work-{work.agent}")
        self.running[work.agent] = (work, task)

    async def _run_work(self, work: Work) -> None:
        try:
            await self.handler(self.kernel, work)
            if work.activation is not None and self.dispatcher is not None:
                await self.dispatcher.ack([work.activation])
        except asyncio.CancelledError:
            raise
        except errors.StaleLease as exc:
            log.warning("%s lost its lease: %s", work.agent, exc)
        except Exception:
            log.exception("handler failed for %s", work.agent)
            if work.task is not None:
                await self._fail_gracefully(work)
        finally:
            self.running.pop(work.agent, None)
            if self.listener is not None:
                self.listener.woken.set()  # a slot is free: look for more work

    async def _fail_gracefully(self, work: Work) -> None:
        assert work.task is not None
        with contextlib.suppress(errors.KernelError):
            async with self.kernel.connection() as conn:
                await tasks.release(conn, work.task, reason=f"{work.agent}: handler error")

    async def _keep_alive(self) -> None:
        """Renew leases every lease/3 and heartbeat the session."""
        assert self.dispatcher is not None and self.session_id is not None
        period = self.kernel.settings.lease_seconds / 3
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            try:
                held = {
                    w.task.lease_token: w
                    for w, _ in self.running.values()
                    if w.task is not None and w.task.lease_token is not None
                }
                still = await self.dispatcher.renew(list(held))
                for token, work in held.items():
                    if token not in still:
                        work.lost.set()
                async with self.kernel.connection() as conn:
                    await sessions.heartbeat(conn, self.session_id)
                self.last_heartbeat_ok = loop.time()
            except Exception as exc:
                log.warning("lease renewal failed: %s", exc)
                with contextlib.suppress(Exception):
                    await self.dispatcher.close()

    async def _shutdown(self) -> None:
        for work, task in list(self.running.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            if work.task is not None:
                with contextlib.suppress(errors.KernelError):
                    async with self.kernel.connection() as conn:
                        await tasks.release(conn, work.task, reason=f"{work.agent} shut down")
        self.running.clear()
        if self.session_id is not None:
            with contextlib.suppress(Exception):
                async with self.kernel.connection() as conn:
                    await sessions.stop_session(conn, self.session_id, actor=self.agents[0])
        if self.dispatcher is not None:
            await self.dispatcher.close()
        if self._own_listener and self.listener is not None:
            await self.listener.stop()
