"""The database side of mission control: snapshots from NOTIFY, actions through the kernel.

Protocol
--------
The service runs on a thread of its own with its own event loop (started by the App as
a Textual thread worker), so no query, row decoding or JSON parsing ever runs on the
UI's loop. It owns one Kernel (a small pool) and one bus.Listener.

The screen is split into topics (header, agents, board, feed, the open task). Each
topic has a refresher: a coroutine that waits for its `dirty` event, re-reads its part
of the screen with LIMITed queries, and hands the snapshot to `sink` (the App posts it
as a Textual message; post_message is thread-safe). NOTIFY hints only mark topics
dirty, so a burst of a thousand notifications costs one re-read per topic, and a
topic re-reads at most once per its gap (`min_gap`, `slow_gap`).

Nothing polls the database for updates. Two fallbacks bound what a lost hint can cost:

* after the listener reconnects (bus.Listener heals itself), every topic is re-read;
* every `resync_interval` seconds (default 30) every topic is re-read anyway; this is
  also what moves agents' heartbeats and liveness, which change without a NOTIFY.

A query that fails because the database is gone marks the service offline (the App
shows a banner), and the refresher retries with backoff; the service is online again
once the listener is connected and a query succeeds, and then resynchronises.

Actions (create, cancel, retry, raise a budget, send a message) are coroutines run on
the service's loop through `submit()`, which returns a concurrent Future the UI awaits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import enum
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
from agentos.kernel import bus, errors
from agentos.kernel import tasks as ktasks
from agentos.kernel.db import Conn, Kernel, translate_errors
from agentos.kernel.models import Task, TaskStatus
from agentos.kernel.settings import Settings
from agentos.sql import query as kernel_query
from agentos.tui import model
from agentos.tui.clock import Clock, offset_clock, start_of_day
from agentos.tui.queries import query

log = logging.getLogger(__name__)

T = TypeVar("T")
Sink = Callable[[object], None]

STEP = getattr(bus, "STEP", "agentos_step")
CHANNELS = (bus.TASK, bus.ACTIVITY, bus.AGENT, bus.MESSAGE, STEP)

PAGE = 40  # cards per column before "more" is asked for
FEED_LIMIT = 50  # the feed panel is under half the screen: 50 rows fill a 100-line terminal
AGENT_LIMIT = 200
STEP_LIMIT = 300
MESSAGE_LIMIT = 100


class Topic(enum.Enum):
    """A part of the screen that is re-read as a whole."""

    HEADER = "header"
    AGENTS = "agents"
    BOARD = "board"
    FEED = "feed"
    TASK = "task"


ALL_TOPICS = tuple(Topic)


def default_actor() -> str:
    """Who a person at this terminal is, for created_by and the audit log."""
    return os.environ.get("USER") or os.environ.get("USERNAME") or "tui"


def parse_filter(text: str | None) -> dict[str, Any]:
    """The filter's query parameters: an ILIKE pattern, and an id when it looks like one."""
    text = (text or "").strip()
    if not text:
        return {"like": None, "qid": None}
    bare = text.removeprefix("#")
    escaped = text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
    return {"like": f"%{escaped}%", "qid": int(bare) if bare.isdigit() else None}


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
        self.actor = actor or default_actor()
        self.resync_interval = resync_interval
        # a topic re-reads at most once per gap: the board, feed and task screen follow
        # closely; header and agents (counts, spend) may lag a quarter second in a burst
        self.gaps = {
            Topic.HEADER: slow_gap,
            Topic.AGENTS: slow_gap,
            Topic.BOARD: min_gap,
            Topic.FEED: min_gap,
            Topic.TASK: min_gap,
        }
        self.check_interval = check_interval
        self.reconnect_delay = reconnect_delay
        # what the screen asks to see (changed from the UI thread through _call_soon)
        self.filter: str | None = None
        self.limits: dict[str, int] = dict.fromkeys(model.COLUMN_KEYS, PAGE)
        self.task_id: int | None = None
        self._related: frozenset[int] = frozenset()
        # loop state
        self.kernel: Kernel | None = None
        self.listener: bus.Listener | None = None
        self.online = False
        self.loads = 0  # snapshots sent, for tests and the bench
        self.timings: dict[str, float] = {}  # last load time per topic, seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dirty: dict[Topic, asyncio.Event] = {}
        self._busy: set[Topic] = set()
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._failed: BaseException | None = None
        self._conn_state: tuple[bool, str] | None = None
        self._finished = threading.Event()
        self._lock = threading.Lock()

    # ------------------------------------------------------------ UI-thread API --

    def now(self) -> dt.datetime:
        """The screen's clock (pinned in tests, else the server's time)."""
        return self._clock()

    def run(self) -> None:
        """Run the service until stop(); blocks (the App runs it in a thread worker)."""
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # never let the worker take the App down
            self._failed = exc
            log.exception("mission control service stopped")
            self._emit(model.Connection(False, f"service stopped: {exc}"))
        finally:
            self._started.set()
            self._finished.set()

    def join(self, timeout: float = 5.0) -> bool:
        """Block until run() has returned (after stop())."""
        return self._finished.wait(timeout)

    def wait_started(self, timeout: float = 15.0) -> bool:
        """Block until the loop runs (tests, bench)."""
        return self._started.wait(timeout)

    def stop(self) -> None:
        """Ask the service to stop (thread-safe); run() returns soon after."""
        self._call_soon(lambda: self._stop.set() if self._stop else None)

    def submit(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> concurrent.futures.Future[T]:
        """Run fn() on the service's loop; the returned Future completes with its result."""
        if self._loop is None or self._loop.is_closed():
            fut: concurrent.futures.Future[T] = concurrent.futures.Future()
            fut.set_exception(errors.DatabaseUnavailable("mission control is not connected"))
            return fut
        return asyncio.run_coroutine_threadsafe(fn(), self._loop)

    def set_filter(self, text: str | None) -> None:
        """Show only tasks and activities matching text (title, agent, role, kind, #id)."""
        value = (text or "").strip() or None

        def apply() -> None:
            if value != self.filter:
                self.filter = value
                self.limits = dict.fromkeys(model.COLUMN_KEYS, PAGE)
                self._mark(Topic.BOARD, Topic.FEED)

        self._call_soon(apply)

    def show_more(self, column: str) -> None:
        """Load the next page of a board column (its cursor reached the last card)."""

        def apply() -> None:
            self.limits[column] = self.limits.get(column, PAGE) + PAGE
            self._mark(Topic.BOARD)

        self._call_soon(apply)

    def watch_task(self, task_id: int | None) -> None:
        """Keep the task screen's detail fresh for task_id (None: no task screen)."""

        def apply() -> None:
            self.task_id = task_id
            self._related = frozenset()
            if task_id is not None:
                self._mark(Topic.TASK)

        self._call_soon(apply)

    def refresh(self, *topics: Topic) -> None:
        """Re-read these topics (all when none are named)."""
        self._call_soon(lambda: self._mark(*(topics or ALL_TOPICS)))

    def idle(self) -> bool:
        """True when nothing is dirty or being read (tests wait for this)."""
        if self._loop is None:
            return False
        return not self._busy and not any(e.is_set() for e in self._dirty.values())

    def _call_soon(self, fn: Callable[[], None]) -> None:
        """Run fn on the service loop; before the loop runs, here and now (it reads the
        state when it starts, so nothing asked for early is lost)."""
        with self._lock:
            loop = self._loop
            if loop is None:
                fn()
                return
        if loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(fn)

    def _emit(self, item: object) -> None:
        self.loads += 1
        try:
            self.sink(item)
        except Exception:
            log.exception("mission control sink failed")

    # ---------------------------------------------------------------- the loop --

    async def _main(self) -> None:
        with self._lock:
            self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._dirty = {t: asyncio.Event() for t in ALL_TOPICS}
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
            self._started.set()
            workers = [
                asyncio.create_task(self._refresher(Topic.HEADER, self._load_header)),
                asyncio.create_task(self._refresher(Topic.AGENTS, self._load_agents)),
                asyncio.create_task(self._refresher(Topic.BOARD, self._load_board)),
                asyncio.create_task(self._refresher(Topic.FEED, self._load_feed)),
                asyncio.create_task(self._refresher(Topic.TASK, self._load_task)),
                asyncio.create_task(self._watch_connection()),
                asyncio.create_task(self._resync()),
            ]
            self._mark(*ALL_TOPICS)
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
                # one connection per topic, so no part of the screen waits for another
                await self.kernel.open(min_size=1, max_size=len(ALL_TOPICS))
                break
            except errors.DatabaseUnavailable as exc:
                self._set_online(False, str(exc))
                self._started.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                if self._stop.is_set():
                    raise
                delay = min(delay * 2, 5.0)
        if self._fixed_clock is None:
            await self._sync_clock()

    async def _sync_clock(self) -> None:
        """Follow the server's clock: ages match what SQL computes with now()."""
        assert self.kernel is not None
        before = time.time()
        async with self.kernel.connection() as conn:
            row = await (await conn.execute(query("server_now"))).fetchone()
        after = time.time()
        assert row is not None
        local_mid = dt.datetime.fromtimestamp((before + after) / 2).astimezone()
        self._clock = offset_clock(row["now"] - local_mid)

    def _mark(self, *topics: Topic) -> None:
        for t in topics:
            if t is Topic.TASK and self.task_id is None:
                continue
            ev = self._dirty.get(t)
            if ev is not None:
                ev.set()

    def _on_notify(self, channel: str, payload: str) -> None:
        """A NOTIFY hint: mark the topics it can change (runs on the service loop)."""
        try:
            hint = json.loads(payload) if payload else {}
        except ValueError:
            hint = {}
        watched = self.task_id
        if channel == bus.TASK:
            # agents that claim or finish a task change their own row: bus.AGENT covers them
            self._mark(Topic.BOARD, Topic.HEADER)
            tid = hint.get("id")
            if watched is not None and (
                tid == watched or tid in self._related or hint.get("op") == "insert"
            ):
                self._mark(Topic.TASK)
        elif channel == bus.ACTIVITY:
            self._mark(Topic.FEED)
            if watched is not None and hint.get("task") == watched:
                self._mark(Topic.TASK)
        elif channel == bus.AGENT:
            self._mark(Topic.AGENTS, Topic.HEADER)
        elif channel == bus.MESSAGE:
            if watched is not None and hint.get("task") == watched:
                self._mark(Topic.TASK)
        elif channel == STEP:
            # a step usually follows an LLM call: spend changed too
            self._mark(Topic.HEADER, Topic.AGENTS)
            if watched is not None and hint.get("task") == watched:
                self._mark(Topic.TASK)

    async def _refresher(self, topic: Topic, load: Callable[[], Awaitable[object]]) -> None:
        """Wait for dirty, re-read, send; retry with backoff while the database is away."""
        ev = self._dirty[topic]
        delay = self.reconnect_delay
        while True:
            await ev.wait()
            ev.clear()
            self._busy.add(topic)
            started = time.perf_counter()
            try:
                item = await load()
            except asyncio.CancelledError:
                raise
            except (errors.DatabaseUnavailable, psycopg.OperationalError) as exc:
                self._busy.discard(topic)
                self._set_online(False, str(exc).splitlines()[0] if str(exc) else "")
                ev.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            except Exception as exc:
                self._busy.discard(topic)
                log.exception("mission control could not load %s", topic.value)
                self._emit(model.Connection(self.online, f"could not load {topic.value}: {exc}"))
                await asyncio.sleep(5.0)
                continue
            self.timings[topic.value] = time.perf_counter() - started
            delay = self.reconnect_delay
            if item is not None:
                self._emit(item)
            self._busy.discard(topic)
            if self.listener is not None and self.listener.connected.is_set():
                self._set_online(True)
            if self.gaps[topic]:
                await asyncio.sleep(self.gaps[topic])

    async def _watch_connection(self) -> None:
        """Follow the listener's state (in memory, no queries): banner and resync."""
        assert self.listener is not None
        was = self.listener.connected.is_set()
        while True:
            await asyncio.sleep(0.1)
            now = self.listener.connected.is_set()
            if now == was:
                continue
            was = now
            if now:
                self._mark(*ALL_TOPICS)  # whatever committed while we were deaf
            else:
                self._set_online(False, "lost the connection to the database; reconnecting")

    async def _resync(self) -> None:
        """The slow safety net: re-read everything every resync_interval seconds."""
        while True:
            await asyncio.sleep(self.resync_interval)
            self._mark(*ALL_TOPICS)

    def _set_online(self, online: bool, detail: str = "") -> None:
        state = (online, "" if online else detail)
        if state == self._conn_state:
            return
        self._conn_state = state
        self.online = online
        self._emit(model.Connection(online, detail))

    # ---------------------------------------------------------------- loaders --

    def _time_params(self) -> dict[str, Any]:
        now = self.now()
        return {"now": now, "day": start_of_day(now)}

    async def _load_header(self) -> model.HeaderStats:
        assert self.kernel is not None
        async with self.kernel.connection() as conn:
            row = await (await conn.execute(query("header_stats"), self._time_params())).fetchone()
            queues = await (await conn.execute(query("queue_depth"))).fetchall()
        assert row is not None
        return model.HeaderStats(
            registered=row["registered"],
            online=row["online"],
            queues=tuple(
                model.QueueDepth(q["role"], q["ready"], q["waiting"], q["running"]) for q in queues
            ),
            done_today=row["done_today"],
            spend_today=Decimal(row["spend_today"]),
        )

    async def _load_agents(self) -> model.Agents:
        assert self.kernel is not None
        async with self.kernel.connection() as conn:
            rows = await (
                await conn.execute(query("agents"), {**self._time_params(), "limit": AGENT_LIMIT})
            ).fetchall()
        out = []
        for r in rows:
            if r["session_status"] == "dead":
                status = "dead"  # its process stopped beating and was reaped
            elif r["status"] == "offline":
                status = "offline"  # stopped cleanly, or never started
            elif not r["alive"]:
                status = "dead"  # says it is up, but its process stopped beating
            else:
                status = r["status"]
            out.append(
                model.AgentRow(
                    name=r["name"],
                    role=r["role"],
                    status=status,
                    current_task_id=r["current_task_id"],
                    current_task=r["current_task"],
                    last_heartbeat=r["last_heartbeat"],
                    spend_today=Decimal(r["spend_today"]),
                    model=r["model"],
                )
            )
        return model.Agents(tuple(out), rows[0]["total"] if rows else 0)

    async def _load_board(self) -> model.Board:
        assert self.kernel is not None
        text = self.filter
        params = parse_filter(text)
        limits = {f"l{i}": self.limits[k] for i, k in enumerate(model.COLUMN_KEYS)}
        async with self.kernel.connection() as conn:
            counts = {
                r["status"]: r["n"]
                for r in await (await conn.execute(query("board_counts"), params)).fetchall()
            }
            rows = await (await conn.execute(query("board_cards"), {**params, **limits})).fetchall()
        cards: list[list[model.Card]] = [[] for _ in model.COLUMNS]
        for r in rows:
            cards[r["col"]].append(
                model.Card(
                    id=r["id"],
                    status=r["status"],
                    priority=r["priority"],
                    title=r["title"],
                    role=r["role"],
                    assignee=r["assignee"],
                    created_at=r["created_at"],
                    updated_at=r["updated_at"],
                    attempts=r["attempts"],
                    max_attempts=r["max_attempts"],
                )
            )
        columns = tuple(
            model.Column(
                key=key,
                title=title,
                cards=tuple(cards[i]),
                total=sum(counts.get(s, 0) for s in statuses),
            )
            for i, (key, title, _short, statuses) in enumerate(model.COLUMNS)
        )
        return model.Board(columns, text)

    async def _load_feed(self) -> model.Feed:
        assert self.kernel is not None
        text = self.filter
        async with self.kernel.connection() as conn:
            rows = await (
                await conn.execute(query("feed"), {**parse_filter(text), "limit": FEED_LIMIT})
            ).fetchall()
        return model.Feed(tuple(_activity(r) for r in rows), text)

    async def _load_task(self) -> model.TaskDetail | model.TaskMissing | None:
        task_id = self.task_id
        if task_id is None:
            return None
        assert self.kernel is not None
        p = {"id": task_id}
        async with self.kernel.connection() as conn:

            async def rows(name: str, **extra: Any) -> list[dict[str, Any]]:
                return await (await conn.execute(query(name), {**p, **extra})).fetchall()

            found = await rows("task")
            if not found:
                return model.TaskMissing(task_id)
            deps = await rows("task_depends_on")
            dependents = await rows("task_dependents")
            subtasks = await rows("task_subtasks", limit=50)
            steps = await rows("task_steps", limit=STEP_LIMIT)
            messages = await rows("task_messages", limit=MESSAGE_LIMIT)
            activities = await rows("task_activities", limit=30)
            cost = (await rows("task_cost"))[0]

        def ref(r: dict[str, Any]) -> model.TaskRef:
            return model.TaskRef(r["id"], r["title"], r["status"])

        detail = model.TaskDetail(
            task=found[0],
            depends_on=tuple(ref(r) for r in deps),
            dependents=tuple(ref(r) for r in dependents),
            subtasks=tuple(ref(r) for r in subtasks),
            subtask_total=subtasks[0]["total"] if subtasks else 0,
            steps=tuple(_step(r) for r in steps),
            step_total=steps[0]["total"] if steps else 0,
            messages=tuple(
                model.MessageRow(
                    r["id"], r["created_at"], r["from_agent"], r["to_agent"], r["kind"], r["body"]
                )
                for r in messages
            ),
            activities=tuple(_activity(r) for r in activities),
            cost_usd=Decimal(cost["cost_usd"]),
            calls=cost["calls"],
            prompt_tokens=cost["prompt_tokens"],
            completion_tokens=cost["completion_tokens"],
            related=frozenset(r["id"] for r in (*deps, *dependents, *subtasks)),
        )
        if self.task_id == task_id:
            self._related = detail.related
        return detail

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
        """Set a task's budget to budget_usd, then retry it if it was blocked or failed."""
        async with self._conn() as conn:
            return await raise_budget(conn, task_id, budget_usd, actor=self.actor)

    async def send_message(
        self,
        *,
        body: str,
        to_agent: str | None = None,
        task_id: int | None = None,
        kind: str = "comment",
    ) -> int:
        """Send a message to an agent or about a task; returns its id."""
        async with self._conn() as conn:
            return await send_message(
                conn,
                body=body,
                to_agent=to_agent,
                task_id=task_id,
                from_agent=self.actor,
                kind=kind,
            )

    async def task_budget(self, task_id: int) -> dict[str, Any]:
        """A task's title, status, budget and spend (for the budget form)."""
        async with self._conn() as conn:
            row = await (await conn.execute(query("task_budget"), {"id": task_id})).fetchone()
        if row is None:
            raise errors.NotFound(f"no task {task_id}")
        return dict(row)

    async def agent_names(self) -> list[str]:
        """Registered agents' names (for the message form's suggestions)."""
        async with self._conn() as conn:
            rows = await (
                await conn.execute("SELECT name FROM agentos.agents ORDER BY name LIMIT 500")
            ).fetchall()
        return [r["name"] for r in rows]

    async def role_names(self) -> list[str]:
        """Roles in use (for the new-task form's suggestions)."""
        async with self._conn() as conn:
            rows = await (
                await conn.execute(
                    "SELECT role FROM agentos.agents UNION SELECT 'worker' UNION "
                    "SELECT 'reviewer' UNION SELECT 'orchestrator' ORDER BY 1 LIMIT 100"
                )
            ).fetchall()
        return [r["role"] for r in rows]

    @contextlib.asynccontextmanager
    async def _conn(self) -> Any:
        if self.kernel is None:
            raise errors.DatabaseUnavailable("mission control is not connected")
        async with self.kernel.connection() as conn:
            yield conn


def _activity(r: dict[str, Any]) -> model.ActivityRow:
    return model.ActivityRow(
        r["id"], r["created_at"], r["kind"], r["actor"], r["task_id"], r["message"]
    )


def _step(r: dict[str, Any]) -> model.Step:
    content: Any = r["content"]
    if not r["truncated"]:
        with contextlib.suppress(ValueError, TypeError):
            content = json.loads(r["content"])
    return model.Step(
        id=r["id"],
        stage=r["stage"],
        seq=r["seq"],
        agent=r["agent"],
        attempt=r["attempt"],
        kind=r["kind"],
        tool_name=r["tool_name"],
        content=content,
        truncated=r["truncated"],
        created_at=r["created_at"],
    )


async def raise_budget(conn: Conn, task_id: int, budget_usd: Decimal, *, actor: str) -> Task:
    """Set a task's budget (kernel.usage, audited), then retry it if it was stuck."""
    from agentos.kernel.usage import raise_task_budget

    async with conn.transaction():
        await raise_task_budget(conn, task_id, float(budget_usd), actor=actor)
    task = await ktasks.get_task(conn, task_id)
    if task.status in {TaskStatus.blocked, TaskStatus.failed}:
        return await ktasks.retry(conn, task_id, actor=actor, reason=f"budget raised by {actor}")
    return task


async def send_message(
    conn: Conn,
    *,
    body: str,
    to_agent: str | None = None,
    task_id: int | None = None,
    from_agent: str | None = None,
    kind: str = "comment",
) -> int:
    """Insert a message (agentos.kernel.messages.send_message when the kernel has it)."""
    if not body.strip():
        raise errors.BadInput("a message needs a body")
    if to_agent is None and task_id is None:
        raise errors.BadInput("a message goes to an agent, a task, or both")
    try:
        from agentos.kernel import messages as kmessages

        kernel_fn = getattr(kmessages, "send_message", None)
    except ImportError:
        kernel_fn = None
    if kernel_fn is not None:
        msg = await kernel_fn(
            conn, body=body, to_agent=to_agent, task_id=task_id, from_agent=from_agent, kind=kind
        )
        return int(msg["id"] if isinstance(msg, dict) else msg.id)
    with translate_errors():
        async with conn.transaction():
            if to_agent is not None:
                found = await (
                    await conn.execute("SELECT 1 FROM agentos.agents WHERE name = %s", (to_agent,))
                ).fetchone()
                if found is None:
                    raise errors.BadInput(f"no agent {to_agent!r}")
            row = await (
                await conn.execute(
                    kernel_query("insert_message"),
                    {
                        "task": task_id,
                        "from_agent": from_agent,
                        "to_agent": to_agent,
                        "kind": kind,
                        "body": body,
                    },
                )
            ).fetchone()
    assert row is not None
    return int(row["id"])
