"""The bus: LISTEN/NOTIFY on a dedicated connection that heals itself.

Protocol
--------
A Listener owns one autocommit connection (never a pooled one) and LISTENs on its
channels. Each notification sets `woken` and is passed to subscribers; payloads are
hints (ids, kinds), never data, so readers always re-read the tables.

Notifications can be lost: the connection drops, a proxy (PgBouncer in transaction
mode) swallows them, the backend is terminated. So:

* every `check_interval` seconds the listener NOTIFYs itself on a private channel and
  expects to hear it back; silence means a dead connection, which it replaces;
* after any (re)connect it re-LISTENs and sets `woken`, so consumers re-poll at once
  and pick up whatever was committed while it was deaf;
* consumers wait with a timeout of one poll interval, so a missed notification costs
  at most one poll interval, never a stuck task.

A process needs one listener, shared by everything in it: `Kernel.subscribe(channels,
callback)` adds channels and subscribers to the kernel's one listener. Each consumer
that waits gets its own `Wake` (`listener.wake(channels)`), set by a notification on
one of its channels or by a reconnect, so consumers never clear each other's wake-ups.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterable

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

TASK = "agentos_task"
ACTIVITY = "agentos_activity"
MESSAGE = "agentos_message"
AGENT = "agentos_agent"
STEP = "agentos_step"  # a transcript step was written (sql/002, steps insert trigger)
JOBS = "ch_pgqueuer"  # pgqueuer's own channel: any job row changed (wakes everyone)


# LISTEN statements sent together in one round trip.
LISTEN_BATCH = 200


def work_channel(entrypoint: str) -> str:
    """The channel on which work queued for an entrypoint (role:R, agent:A) is announced."""
    return f"agentos.{entrypoint}"


Subscriber = Callable[[str, str], None]


class Wake:
    """One consumer's wake-up on a shared listener: set by its channels and reconnects."""

    def __init__(self, channels: Iterable[str] | None) -> None:
        self.channels = None if channels is None else frozenset(channels)
        self.event = asyncio.Event()

    def set(self) -> None:
        """Wake the consumer now (also what its own code calls: a slot came free...)."""
        self.event.set()

    def wants(self, channel: str) -> bool:
        """Whether a notification on this channel concerns the consumer."""
        return self.channels is None or channel in self.channels

    async def wait(self, timeout: float) -> bool:
        """Wait for a wake-up for at most timeout seconds; False on timeout."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout=timeout)
        except TimeoutError:
            return False
        finally:
            self.event.clear()
        return True


class Listener:
    """LISTEN on channels over a dedicated connection; reconnects and re-polls on loss."""

    def __init__(
        self,
        url: str,
        channels: Iterable[str],
        *,
        check_interval: float = 5.0,
        reconnect_delay: float = 0.2,
    ) -> None:
        self.url = url
        self.channels = list(dict.fromkeys(channels))
        self.check_interval = check_interval
        self.reconnect_delay = reconnect_delay
        self.woken = asyncio.Event()
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.backend_pid: int | None = None
        self._subscribers: list[Subscriber] = []
        self._wakes: list[Wake] = []
        self._ping_channel = f"agentos_ping_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._to_listen: list[str] = []  # added while connected: LISTENed between batches

    def subscribe(self, callback: Subscriber) -> None:
        """Call callback(channel, payload) for each notification (on the event loop)."""
        self._subscribers.append(callback)

    def wake(self, channels: Iterable[str] | None = None) -> Wake:
        """A wake-up of one's own, set by notifications on `channels` (None: any)."""
        w = Wake(channels)
        self._wakes.append(w)
        return w

    def drop(self, wake: Wake) -> None:
        """Forget a consumer's wake-up (it stopped waiting)."""
        with contextlib.suppress(ValueError):
            self._wakes.remove(wake)

    async def listen(self, channels: Iterable[str]) -> None:
        """Also LISTEN on these channels; a running listener reconnects to add them (its
        consumers re-poll, as after any reconnect)."""
        new = [c for c in dict.fromkeys(channels) if c not in self.channels]
        if not new:
            return
        self.channels.extend(new)
        if self._task is not None:
            await self.stop()
            self._stopping = False
            await self.start()

    def _wake_all(self, channel: str | None = None) -> None:
        self.woken.set()
        for w in list(self._wakes):
            if channel is None or w.wants(channel):
                w.set()

    def add_channels(self, channels: Iterable[str]) -> None:
        """Listen on more channels: at once after a reconnect, else within one check
        interval (callers poll meanwhile, as for any missed notification)."""
        new = [c for c in dict.fromkeys(channels) if c not in self.channels]
        self.channels.extend(new)
        self._to_listen.extend(new)

    async def start(self) -> Listener:
        """Start listening in the background; returns once the first LISTEN is in place."""
        self._task = asyncio.create_task(self._run(), name="agentos-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout=10)
        return self

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def wait(self, timeout: float) -> bool:
        """Wait for a notification (or a reconnect) for at most timeout seconds."""
        try:
            await asyncio.wait_for(self.woken.wait(), timeout=timeout)
        except TimeoutError:
            return False
        finally:
            self.woken.clear()
        return True

    async def _run(self) -> None:
        delay = self.reconnect_delay
        while not self._stopping:
            try:
                await self._session()
                delay = self.reconnect_delay
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost or refused: heal and carry on
                self.connected.clear()
                self.reconnects += 1
                log.warning(
                    "listener connection lost (%s); reconnecting",
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                    extra={"action": "bus.reconnect"},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _session(self) -> None:
        conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        try:
            self._to_listen.clear()
            # a few statements per round trip: a host of 1,000 agents listens on 1,001
            # channels, and each LISTEN alone was one round trip at every (re)connect
            channels = [*self.channels, self._ping_channel]
            for i in range(0, len(channels), LISTEN_BATCH):
                await conn.execute(
                    sql.SQL("; ").join(
                        sql.SQL("LISTEN {}").format(sql.Identifier(c))
                        for c in channels[i : i + LISTEN_BATCH]
                    )
                )
            self.backend_pid = conn.info.backend_pid
            self.connected.set()
            self._wake_all()  # re-poll: anything committed while we were deaf
            loop = asyncio.get_running_loop()
            pending_ping: str | None = None
            ping_sent = 0.0
            next_check = loop.time() + self.check_interval
            while not self._stopping:
                timeout = max(0.01, next_check - loop.time())
                async for note in conn.notifies(timeout=timeout, stop_after=100):
                    if note.channel == self._ping_channel:
                        if note.payload == pending_ping:
                            pending_ping = None
                        continue
                    self._wake_all(note.channel)
                    for cb in list(self._subscribers):
                        try:
                            cb(note.channel, note.payload)
                        except Exception:
                            log.exception("notification subscriber failed")
                while self._to_listen:
                    await conn.execute(
                        sql.SQL("LISTEN {}").format(sql.Identifier(self._to_listen.pop(0)))
                    )
                now = loop.time()
                if now < next_check:
                    continue
                if pending_ping is not None and now - ping_sent > self.check_interval:
                    raise ConnectionError("self-check notification did not come back")
                pending_ping = uuid.uuid4().hex
                ping_sent = now
                await conn.execute(
                    sql.SQL("NOTIFY {}, {}").format(
                        sql.Identifier(self._ping_channel), sql.Literal(pending_ping)
                    )
                )
                next_check = now + self.check_interval
        finally:
            self.connected.clear()
            with contextlib.suppress(Exception):
                await conn.close()
