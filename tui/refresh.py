"""The topic refresh engine: NOTIFY hints mark parts of the screen dirty, each is re-read.

Protocol
--------
The screen is split into topics (header, agents, board, feed, the open task). Each
topic has a refresher: a coroutine that waits for its `dirty` event, re-reads its part
of the screen with its loader (tui/loaders.py), and emits the snapshot. NOTIFY hints
only mark topics dirty (`topics_for`), so a burst of a thousand notifications costs one
re-read per topic, and a topic re-reads at most once per its gap.

Nothing polls the database for updates. Two fallbacks bound what a lost hint can cost:

* after the listener reconnects (bus.Listener heals itself), every topic is re-read;
* every `resync_interval` seconds every topic is re-read anyway; this is also what
  moves agents' heartbeats and liveness, which change without a NOTIFY.

A load that fails because the database is gone marks the engine offline (the App shows
a banner) and the refresher retries with backoff; it is online again once the listener
is connected and a load succeeds, and the reconnect has marked everything dirty.
Everything here runs on the service's loop; nothing in it queries the database itself.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import psycopg
from agentos.kernel import bus, errors
from agentos.tui import model

log = logging.getLogger(__name__)

# The steps trigger's channel (sql/002_agents.sql). kernel.bus names the other four;
# this one has no constant there yet, so it is spelled once, here.
CHANNELS = (bus.TASK, bus.ACTIVITY, bus.AGENT, bus.MESSAGE, bus.STEP)


class Topic(enum.Enum):
    """A part of the screen that is re-read as a whole."""

    HEADER = "header"
    AGENTS = "agents"
    BOARD = "board"
    FEED = "feed"
    TASK = "task"
    CONVERSATIONS = "conversations"


ALL_TOPICS = tuple(Topic)


def topics_for(
    channel: str, hint: Mapping[str, Any], *, watched: int | None, related: frozenset[int]
) -> set[Topic]:
    """The topics a NOTIFY on channel with this payload can change."""
    out: set[Topic] = set()
    if channel == bus.TASK:
        # agents that claim or finish a task change their own row: bus.AGENT covers them
        out |= {Topic.BOARD, Topic.HEADER}
        tid = hint.get("id")
        if watched is not None and (tid == watched or tid in related or hint.get("op") == "insert"):
            out.add(Topic.TASK)
    elif channel == bus.ACTIVITY:
        out.add(Topic.FEED)
        if watched is not None and hint.get("task") == watched:
            out.add(Topic.TASK)
    elif channel == bus.AGENT:
        out |= {Topic.AGENTS, Topic.HEADER}
    elif channel == bus.MESSAGE:
        # a message, or a receipt: unread counts and the conversations screen follow
        out |= {Topic.HEADER, Topic.CONVERSATIONS}
        if watched is not None and hint.get("task") == watched:
            out.add(Topic.TASK)
    elif channel == bus.STEP:
        # a step usually follows an LLM call: spend changed too
        out |= {Topic.HEADER, Topic.AGENTS}
        if watched is not None and hint.get("task") == watched:
            out.add(Topic.TASK)
    return out


class Refresher:
    """Dirty flags, one re-read loop per topic, and the online state they imply."""

    def __init__(
        self,
        *,
        emit: Callable[[object], None],
        gaps: Mapping[Topic, float],
        reconnect_delay: float,
        wanted: Callable[[Topic], bool] = lambda topic: True,
    ) -> None:
        self.emit = emit
        self.gaps = dict(gaps)
        self.reconnect_delay = reconnect_delay
        self.wanted = wanted  # e.g. no TASK re-reads while no task screen is open
        self.online = False
        self.timings: dict[str, float] = {}  # last load time per topic, seconds
        self.dirty: dict[Topic, asyncio.Event] = {}
        self.busy: set[Topic] = set()
        self._state: tuple[bool, str] | None = None

    def start(self) -> None:
        """Create the dirty flags (on the service loop, before any refresher runs)."""
        self.dirty = {t: asyncio.Event() for t in ALL_TOPICS}

    def mark(self, *topics: Topic) -> None:
        """Ask for these topics to be re-read (each at most once, however often asked)."""
        for t in topics:
            ev = self.dirty.get(t)
            if ev is not None and self.wanted(t):
                ev.set()

    def mark_all(self) -> None:
        """Re-read every topic."""
        self.mark(*ALL_TOPICS)

    def idle(self) -> bool:
        """True when nothing is dirty or being read."""
        return not self.busy and not any(e.is_set() for e in self.dirty.values())

    def set_online(self, online: bool, detail: str = "") -> None:
        """Record and emit the connection state (only when it changed)."""
        state = (online, "" if online else detail)
        if state == self._state:
            return
        self._state = state
        self.online = online
        self.emit(model.Connection(online, detail))

    async def refresh(
        self,
        topic: Topic,
        load: Callable[[], Awaitable[object]],
        connected: Callable[[], bool],
    ) -> None:
        """Wait for dirty, re-read, emit; retry with backoff while the database is away."""
        ev = self.dirty[topic]
        delay = self.reconnect_delay
        while True:
            await ev.wait()
            ev.clear()
            self.busy.add(topic)
            started = time.perf_counter()
            try:
                item = await load()
            except asyncio.CancelledError:
                raise
            except (errors.DatabaseUnavailable, psycopg.OperationalError) as exc:
                self.busy.discard(topic)
                self.set_online(False, str(exc).splitlines()[0] if str(exc) else "")
                ev.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            except Exception as exc:
                self.busy.discard(topic)
                log.exception("mission control could not load %s", topic.value)
                self.emit(model.Connection(self.online, f"could not load {topic.value}: {exc}"))
                await asyncio.sleep(5.0)
                continue
            self.timings[topic.value] = time.perf_counter() - started
            delay = self.reconnect_delay
            if item is not None:
                self.emit(item)
            self.busy.discard(topic)
            if connected():
                self.set_online(True)
            if self.gaps.get(topic):
                await asyncio.sleep(self.gaps[topic])

    async def follow(self, connected: Callable[[], bool], interval: float = 0.1) -> None:
        """Follow the listener's state (in memory, no queries): banner, and resync on return."""
        was = connected()
        while True:
            await asyncio.sleep(interval)
            now = connected()
            if now == was:
                continue
            was = now
            if now:
                self.mark_all()  # whatever committed while we were deaf
            else:
                self.set_online(False, "lost the connection to the database; reconnecting")

    async def resync(self, interval: float) -> None:
        """The slow safety net: re-read everything every interval seconds."""
        while True:
            await asyncio.sleep(interval)
            self.mark_all()

    def run_all(
        self,
        loaders: Iterable[tuple[Topic, Callable[[], Awaitable[object]]]],
        connected: Callable[[], bool],
        resync_interval: float,
    ) -> list[asyncio.Task[None]]:
        """Start a refresher per topic, the connection follower and the resync; mark all."""
        tasks = [asyncio.create_task(self.refresh(t, load, connected)) for t, load in loaders]
        tasks.append(asyncio.create_task(self.follow(connected)))
        tasks.append(asyncio.create_task(self.resync(resync_interval)))
        self.mark_all()
        return tasks
