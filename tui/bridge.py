"""The thread bridge: one asyncio loop on a thread of its own, reachable from the UI's.

The App runs `run()` in a Textual thread worker, so no query, row decoding or JSON
parsing ever runs on the UI's loop. The UI thread reaches the loop only through
`call_soon` (fire and forget, for state changes) and `submit` (a concurrent Future the
UI awaits, for actions). Before the loop runs, `call_soon` runs its function at once:
the loop reads that state when it starts, so nothing asked for early is lost.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from agentos.kernel import errors

T = TypeVar("T")


class LoopThread:
    """Runs one coroutine's loop on the calling thread; other threads post work to it."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.failed: BaseException | None = None
        self._lock = threading.Lock()
        self._started = threading.Event()
        self._finished = threading.Event()

    def run(
        self,
        main: Callable[[], Coroutine[Any, Any, None]],
        on_failure: Callable[[BaseException], None],
    ) -> None:
        """Run main() on a new loop until it returns; blocks. A failure goes to on_failure."""
        try:
            asyncio.run(self._enter(main))
        except BaseException as exc:  # never let the worker take the App down
            self.failed = exc
            on_failure(exc)
        finally:
            self._started.set()
            self._finished.set()

    async def _enter(self, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
        with self._lock:
            self.loop = asyncio.get_running_loop()
        await main()

    def started(self) -> None:
        """main() says the loop is serving (or has given up trying)."""
        self._started.set()

    def wait_started(self, timeout: float) -> bool:
        """Block until started() (tests, bench)."""
        return self._started.wait(timeout)

    def join(self, timeout: float) -> bool:
        """Block until run() has returned."""
        return self._finished.wait(timeout)

    @property
    def running(self) -> bool:
        """The loop exists (it may be closing)."""
        return self.loop is not None

    def submit(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> concurrent.futures.Future[T]:
        """Run fn() on the loop; the returned Future completes with its result."""
        loop = self.loop
        if loop is None or loop.is_closed():
            fut: concurrent.futures.Future[T] = concurrent.futures.Future()
            fut.set_exception(errors.DatabaseUnavailable("mission control is not connected"))
            return fut
        return asyncio.run_coroutine_threadsafe(fn(), loop)

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run fn on the loop; before the loop runs, here and now."""
        with self._lock:
            loop = self.loop
            if loop is None:
                fn()
                return
        if loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(fn)
