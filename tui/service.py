"""The database side of mission control: snapshots from NOTIFY, actions through the kernel.

TeamService composes four parts of one concern each:

* bridge.LoopThread  its own thread and event loop (the App runs it in a thread worker),
                     reached from the UI thread only through call_soon and submit;
* refresh.Refresher  NOTIFY hints mark topics dirty; one re-read loop per topic, with
                     the reconnect and resync safety nets and the online state;
* loaders            the parts of the screen read as snapshots, through
                     agentos.kernel.views (sql/tui.sql): no SQL in the TUI;
* actions            create, cancel, retry, raise a budget, send and read messages,
                     approve and reject what waits for a person: kernel calls (an
                     approval merges through agents.gate, as `agentos task approve`).

The service owns one Kernel (a small pool: one connection per topic, so no part of the
screen waits for another) and one bus.Listener. It knows what the screen asks to see
(filter, page sizes, the open task), set from the UI thread through the bridge.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

from agentos.agents import gate
from agentos.agents.config import AgentSettings
from agentos.agents.workspace import GitError, Workspace
from agentos.kernel import approvals, bus, errors, views
from agentos.kernel import tasks as ktasks
from agentos.kernel.db import Conn, Kernel
from agentos.kernel.models import Task, first_error
from agentos.kernel.settings import Settings
from agentos.tui import actions, loaders, model
from agentos.tui.bridge import LoopThread
from agentos.tui.clock import Clock, offset_clock
from agentos.tui.loaders import PAGE
from agentos.tui.refresh import ALL_TOPICS, CHANNELS, Refresher, Topic, topics_for
from pydantic import ValidationError

log = logging.getLogger(__name__)

T = TypeVar("T")
Sink = Callable[[object], None]

__all__ = ["ALL_TOPICS", "PAGE", "Sink", "TeamService", "Topic"]


class TeamService:
    """Keeps the screen's snapshots fresh from NOTIFY and runs actions, on its own thread."""

    def __init__(
        self,
        settings: Settings,
        *,
        sink: Sink,
        url: str | None = None,
        clock: Clock | None = None,
        actor: str | None = None,
        resync_interval: float = 30.0,
        min_gap: float = 0.05,
        slow_gap: float = 0.25,
        check_interval: float = 2.0,
        reconnect_delay: float = 0.2,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self._url = url
        self._fixed_clock = clock
        self._clock: Clock = clock or offset_clock(dt.timedelta(0))
        self.actor = actor or settings.person  # AGENTOS_USER, else the login name
        self.resync_interval = resync_interval
        self.check_interval = check_interval
        self.reconnect_delay = reconnect_delay
        # a topic re-reads at most once per gap: the board, feed and task screen follow
        # closely; header and agents (counts, spend) may lag a quarter second in a burst
        self.refresher = Refresher(
            emit=self._emit,
            gaps={
                Topic.HEADER: slow_gap,
                Topic.AGENTS: slow_gap,
                Topic.BOARD: min_gap,
                Topic.FEED: min_gap,
                Topic.TASK: min_gap,
                Topic.CONVERSATIONS: min_gap,
            },
            reconnect_delay=reconnect_delay,
            wanted=self._wanted,
        )
        self.bridge = LoopThread()
        # what the screen asks to see (changed from the UI thread through the bridge)
        self.filter: str | None = None
        self.limits: dict[str, int] = dict.fromkeys(model.COLUMN_KEYS, PAGE)
        self.task_id: int | None = None
        self._related: frozenset[int] = frozenset()
        self.conversation: str | None = None  # the conversations screen's selection
        # loop state
        self.kernel: Kernel | None = None
        self.listener: bus.Listener | None = None
        self.loads = 0  # snapshots sent, for tests and the bench
        self._stop: asyncio.Event | None = None  # made on the service loop

    @property
    def online(self) -> bool:
        """The last connection state the screen was told."""
        return self.refresher.online

    @property
    def timings(self) -> dict[str, float]:
        """The last load time per topic, seconds."""
        return self.refresher.timings

    # ------------------------------------------------------------ UI-thread API --

    def now(self) -> dt.datetime:
        """The screen's clock (pinned in tests, else the server's time)."""
        return self._clock()

    def run(self) -> None:
        """Run the service until stop(); blocks (the App runs it in a thread worker)."""
        self.bridge.run(self._main, self._failed)

    def join(self, timeout: float = 5.0) -> bool:
        """Block until run() has returned (after stop())."""
        return self.bridge.join(timeout)

    def wait_started(self, timeout: float = 15.0) -> bool:
        """Block until the loop runs (tests, bench)."""
        return self.bridge.wait_started(timeout)

    def stop(self) -> None:
        """Ask the service to stop (thread-safe); run() returns soon after."""
        self.bridge.call_soon(lambda: self._stop.set() if self._stop else None)

    def submit(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> concurrent.futures.Future[T]:
        """Run fn() on the service's loop; the returned Future completes with its result."""
        return self.bridge.submit(fn)

    def set_filter(self, text: str | None) -> None:
        """Show only tasks and activities matching text (title, agent, role, kind, #id)."""
        value = (text or "").strip() or None

        def apply() -> None:
            if value != self.filter:
                self.filter = value
                self.limits = dict.fromkeys(model.COLUMN_KEYS, PAGE)
                self.refresher.mark(Topic.BOARD, Topic.FEED)

        self.bridge.call_soon(apply)

    def show_more(self, column: str) -> None:
        """Load the next page of a board column (its cursor reached the last card)."""

        def apply() -> None:
            self.limits[column] = self.limits.get(column, PAGE) + PAGE
            self.refresher.mark(Topic.BOARD)

        self.bridge.call_soon(apply)

    def watch_task(self, task_id: int | None) -> None:
        """Keep the task screen's detail fresh for task_id (None: no task screen)."""

        def apply() -> None:
            self.task_id = task_id
            self._related = frozenset()
            if task_id is not None:
                self.refresher.mark(Topic.TASK)

        self.bridge.call_soon(apply)

    def watch_conversation(self, key: str | None) -> None:
        """Keep the conversations screen fresh for key ("inbox", "agent:NAME", "channel:NAME",
        "task:ID"); None: no conversations screen."""

        def apply() -> None:
            self.conversation = key
            if key is not None:
                self.refresher.mark(Topic.CONVERSATIONS)

        self.bridge.call_soon(apply)

    def _wanted(self, topic: Topic) -> bool:
        if topic is Topic.TASK:
            return self.task_id is not None
        if topic is Topic.CONVERSATIONS:
            return self.conversation is not None
        return True

    def refresh(self, *topics: Topic) -> None:
        """Re-read these topics (all when none are named)."""
        self.bridge.call_soon(lambda: self.refresher.mark(*(topics or ALL_TOPICS)))

    def idle(self) -> bool:
        """True when nothing is dirty or being read (tests wait for this)."""
        return self.bridge.running and self.refresher.idle()

    def _emit(self, item: object) -> None:
        self.loads += 1
        try:
            self.sink(item)
        except Exception:
            log.exception("mission control sink failed")

    def _failed(self, exc: BaseException) -> None:
        log.error("mission control service stopped", exc_info=exc)
        self._emit(model.Connection(False, f"service stopped: {exc}"))

    # ---------------------------------------------------------------- the loop --

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self.refresher.start()
        self.kernel = Kernel(self.settings, url=self._url)
        try:
            await self._open_kernel()
            self.listener = bus.Listener(
                self.kernel.url,
                CHANNELS,
                check_interval=self.check_interval,
                reconnect_delay=self.reconnect_delay,
            )
            self.listener.subscribe(self._on_notify)
            await self.listener.start()
            self.bridge.started()
            workers = self.refresher.run_all(
                [
                    (Topic.HEADER, self._load_header),
                    (Topic.AGENTS, self._load_agents),
                    (Topic.BOARD, self._load_board),
                    (Topic.FEED, self._load_feed),
                    (Topic.TASK, self._load_task),
                    (Topic.CONVERSATIONS, self._load_conversations),
                ],
                self._connected,
                self.resync_interval,
            )
            try:
                await self._stop.wait()
            finally:
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
        finally:
            if self.listener is not None:
                await self.listener.stop()
            await self.kernel.close()

    def _connected(self) -> bool:
        return self.listener is not None and self.listener.connected.is_set()

    async def _open_kernel(self) -> None:
        """Open the pool, retrying while the database is unreachable (banner shown)."""
        assert self.kernel is not None and self._stop is not None
        delay = self.reconnect_delay
        while True:
            try:
                # a single connection first: it fails at once when the server refuses,
                # where the pool would wait its whole timeout before saying so
                probe = await self.kernel.connect()
                await probe.close()
                await self.kernel.open(min_size=1, max_size=len(ALL_TOPICS))
                break
            except errors.DatabaseUnavailable as exc:
                self.refresher.set_online(False, str(exc))
                self.bridge.started()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                if self._stop.is_set():
                    raise
                delay = min(delay * 2, 5.0)
        if self._fixed_clock is None:
            await self._sync_clock()

    async def _sync_clock(self) -> None:
        """Follow the server's clock: ages match what SQL computes with now()."""
        before = time.time()
        async with self._conn() as conn:
            server = await views.server_now(conn)
        after = time.time()
        local_mid = dt.datetime.fromtimestamp((before + after) / 2).astimezone()
        self._clock = offset_clock(server - local_mid)

    def _on_notify(self, channel: str, payload: str) -> None:
        """A NOTIFY hint: mark the topics it can change (runs on the service loop)."""
        try:
            hint = json.loads(payload) if payload else {}
        except ValueError:
            hint = {}
        if not isinstance(hint, dict):
            hint = {}
        self.refresher.mark(*topics_for(channel, hint, watched=self.task_id, related=self._related))

    # ---------------------------------------------------------------- loaders --

    async def _load_header(self) -> model.HeaderStats:
        async with self._conn() as conn:
            return await loaders.load_header(conn, self.now(), self.actor)

    async def _load_agents(self) -> model.Agents:
        async with self._conn() as conn:
            return await loaders.load_agents(conn, self.now())

    async def _load_board(self) -> model.Board:
        async with self._conn() as conn:
            return await loaders.load_board(conn, self.filter, self.limits)

    async def _load_feed(self) -> model.Feed:
        async with self._conn() as conn:
            return await loaders.load_feed(conn, self.filter)

    async def _load_task(self) -> model.TaskDetail | model.TaskMissing | None:
        task_id = self.task_id
        if task_id is None:
            return None
        async with self._conn() as conn:
            detail = await loaders.load_task(conn, task_id)
        if isinstance(detail, model.TaskDetail) and self.task_id == task_id:
            self._related = detail.related
        return detail

    async def _load_conversations(self) -> model.Conversations | None:
        key = self.conversation
        if key is None:
            return None
        async with self._conn() as conn:
            return await loaders.load_conversations(conn, self.actor, key)

    # ---------------------------------------------------------------- actions --
    # Each runs on the service loop (through submit) and goes through the kernel.

    async def create_task(
        self,
        *,
        title: str,
        description: str = "",
        acceptance: str = "",
        role: str = "worker",
        priority: int = 0,
    ) -> Task:
        """Create a task (agentos.kernel.tasks.create_task)."""
        async with self._conn() as conn:
            return await ktasks.create_task(
                conn,
                created_by=self.actor,
                title=title,
                description=description,
                acceptance=acceptance,
                role=role,
                priority=priority,
            )

    async def cancel_task(self, task_id: int) -> Task:
        """Cancel a task (agentos.kernel.tasks.cancel)."""
        async with self._conn() as conn:
            return await ktasks.cancel(conn, task_id, actor=self.actor)

    async def retry_task(self, task_id: int) -> Task:
        """Put a failed, blocked or cancelled task back in the queue."""
        async with self._conn() as conn:
            return await ktasks.retry(conn, task_id, actor=self.actor)

    async def raise_budget(self, task_id: int, budget_usd: Decimal) -> Task:
        """Give a task a new budget; a blocked or failed one is retried with it."""
        async with self._conn() as conn:
            return await actions.raise_budget(conn, task_id, budget_usd, actor=self.actor)

    async def decision_task(self, task_id: int) -> Task:
        """The task as a decision screen shows it (status, title, branch, what the review
        held in metadata.approval); NotFound if none."""
        async with self._conn() as conn:
            return await ktasks.get_task(conn, task_id)

    def workspace(self) -> Workspace:
        """The team's workspace as `agentos task approve` builds it (AgentSettings:
        AGENTOS_WORKSPACE, AGENTOS_WORKSPACE_REMOTE, AGENTOS_BASE_BRANCH, AGENTOS_HOME)."""
        if self.kernel is None:
            raise errors.DatabaseUnavailable("mission control is not connected")
        s = self.agent_settings()
        return Workspace(
            s.workspace_path,
            s.worktrees_path,
            s.workspace_remote,
            kernel=self.kernel,
            base_branch=s.base_branch,
        )

    def agent_settings(self) -> AgentSettings:
        """The settings the workspace comes from: ours when they are AgentSettings, else
        ours with the agent fields from the environment."""
        if isinstance(self.settings, AgentSettings):
            return self.settings
        try:
            return AgentSettings(**self.settings.model_dump())
        except ValidationError as exc:
            raise errors.BadInput(f"bad setting: {first_error(exc)}") from None

    async def approve_task(self, task_id: int, budget_usd: Decimal | None = None) -> Task:
        """A person's approval (agents.gate.approve, as `agentos task approve N [--budget
        USD]`): merge the held branch and finish the task, or resume a task blocked on its
        budget with `budget_usd`. Refused (KernelError, nothing changed) otherwise."""
        workspace = self.workspace()
        assert self.kernel is not None
        if budget_usd is None:
            async with self._conn() as conn:  # refuse before touching the repository
                approvals.refuse_unless_waiting(await ktasks.get_task(conn, task_id), "approve")
            try:
                await workspace.ensure()
            except GitError as exc:
                raise errors.KernelError(
                    f"task {task_id} still waits: the workspace {workspace.repo}: {exc}"
                ) from None
        return await gate.approve(
            self.kernel,
            workspace,
            task_id,
            actor=self.actor,
            budget_usd=float(budget_usd) if budget_usd is not None else None,
        )

    async def reject_task(self, task_id: int, feedback: str) -> Task:
        """Send held work back to its worker with feedback (kernel.approvals.reject, as
        `agentos task reject N --feedback TEXT`); the feedback is in its next prompt."""
        if not feedback.strip():
            raise errors.BadInput("the feedback is empty: write what the worker must change")
        async with self._conn() as conn:
            return await approvals.reject(conn, task_id, actor=self.actor, feedback=feedback)

    async def send_message(
        self,
        *,
        body: str,
        to_agent: str | None = None,
        task_id: int | None = None,
        channel: str | None = None,
        kind: str = "comment",
    ) -> int:
        """Send a message (as the person at this screen) to an agent, about a task, or in
        a channel; returns its id."""
        async with self._conn() as conn:
            return await actions.send_message(
                conn,
                body=body,
                to_agent=to_agent,
                task_id=task_id,
                channel=channel,
                from_agent=self.actor,
                kind=kind,
            )

    async def mark_read(self, ids: list[int]) -> int:
        """The person at this screen has read these messages."""
        async with self._conn() as conn:
            return await actions.mark_read(conn, ids, reader=self.actor)

    async def task_budget(self, task_id: int) -> dict[str, Any]:
        """A task's title, status, budget and spend (for the budget form)."""
        async with self._conn() as conn:
            return await actions.task_budget(conn, task_id)

    async def agent_names(self) -> list[str]:
        """Registered agents' names (for the message form's suggestions)."""
        async with self._conn() as conn:
            return await views.agent_names(conn)

    async def role_names(self) -> list[str]:
        """Roles in use (for the new-task form's suggestions)."""
        async with self._conn() as conn:
            return await views.role_names(conn)

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[Conn]:
        if self.kernel is None:
            raise errors.DatabaseUnavailable("mission control is not connected")
        async with self.kernel.connection() as conn:
            yield conn
