"""The composition root: one Kernel owns the connection pool and is passed down.

There are no module-level pools. A process builds one Kernel from Settings, opens it,
and hands it to whatever needs the database. LISTEN connections are separate
(see bus.Listener): a pooled connection is never left listening.

Surviving a database blip
-------------------------
When the server restarts, every idle pooled connection is dead, and the pool only
finds out when someone uses one. So the first connection error a Kernel sees makes it
*suspicious* for a few seconds: the pool checks each idle connection (dropping the
dead ones) and checks every connection it hands out during that time with an empty
query, so the next caller gets a live one. Outside those seconds a checkout costs
nothing extra. Kernel.retrying() runs a short, repeatable piece of kernel work (a lease
renewal, a heartbeat, a release checked by its token) again after a lost connection,
until a deadline: callers that must not give up on a blip use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any, ParamSpec, TypeVar

import psycopg
from agentos.kernel import bus, errors
from agentos.kernel.settings import Settings
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

Conn = psycopg.AsyncConnection[dict[str, Any]]
P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger(__name__)

# How long after a lost connection the pool checks what it hands out.
SUSPICION_SECONDS = 10.0

# The process's time in kernel transactions, every Kernel together (kernel/metrics.py
# serves them as agentos_db_seconds_total and agentos_db_transactions_total).
TOTALS: dict[str, float] = {"seconds": 0.0, "transactions": 0}


def connection_lost(exc: BaseException) -> bool:
    """True when exc (or its cause) says the connection or the server went away.

    Deadlocks, serialization failures and cancelled statements are OperationalErrors too,
    but the connection is fine after them: they are not connection losses.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, psycopg.OperationalError):
            if isinstance(seen, psycopg.errors.TransactionRollback | psycopg.errors.QueryCanceled):
                return False
            state = seen.sqlstate or ""
            # no SQLSTATE: the client lost the socket; 08: connection exception;
            # 57P: the server is shutting down, crashed, or not yet accepting connections
            return state == "" or state.startswith("08") or state.startswith("57P")
        if isinstance(seen, psycopg.InterfaceError | ConnectionError | OSError):
            return True
        seen = seen.__cause__
    return False


def resolve_database_url(
    settings: Settings, start_embedded: bool = True, *, agent: bool = False
) -> str:
    """The URL to use: AGENTOS_DATABASE_URL, else the embedded server (started if needed).

    With `agent`, the URL agent processes connect with: AGENTOS_AGENT_DATABASE_URL, else
    AGENTOS_DATABASE_URL as given, else the embedded server's agentos_agent role, which
    may read and write AgentOS's rows but run no DDL and hold no superuser power.
    """
    if agent and settings.agent_database_url is not None:
        return settings.agent_database_url.get_secret_value()
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    from agentos.kernel import embedded

    if agent:
        return embedded.agent_url(settings.pgdata)

    if start_embedded:
        return embedded.ensure_running(settings.pgdata).url()
    server = embedded.running_server(settings.pgdata)
    if server is None:
        raise errors.DatabaseUnavailable(
            "the embedded database is not running (run `agentos start` or `agentos db migrate`)"
        )
    return server.url()


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn database errors raised by kernel SQL into KernelErrors with one-line messages."""
    try:
        yield
    except psycopg.errors.RaiseException as exc:
        raise _from_diag(exc) from exc
    except psycopg.errors.CheckViolation as exc:
        raise errors.BadInput(_first_line(exc)) from exc
    except psycopg.errors.ForeignKeyViolation as exc:
        raise errors.BadInput(_fk_message(exc)) from exc
    except psycopg.errors.UniqueViolation as exc:
        raise errors.BadInput(_first_line(exc)) from exc
    except (psycopg.errors.InvalidTextRepresentation, psycopg.errors.NumericValueOutOfRange) as exc:
        raise errors.BadInput(_first_line(exc)) from exc
    except psycopg.errors.NoDataFound as exc:
        raise errors.NotFound(_first_line(exc)) from exc
    except psycopg.errors.SerializationFailure as exc:
        if (exc.diag.message_hint or "") == "agentos:stale_lease":
            raise errors.StaleLease(_first_line(exc)) from exc
        raise
    except psycopg.OperationalError as exc:
        raise errors.DatabaseUnavailable(f"database unavailable: {_first_line(exc)}") from exc


def translated(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Decorate a kernel coroutine so callers see KernelErrors, never raw psycopg errors."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with translate_errors():
            return await fn(*args, **kwargs)

    return wrapper


def _first_line(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    msg = (diag.message_primary if diag is not None else None) or str(exc)
    return msg.strip().splitlines()[0] if msg.strip() else exc.__class__.__name__


def _fk_message(exc: psycopg.errors.ForeignKeyViolation) -> str:
    """'Key (assignee)=(bob) is not present in table "agents".' -> "no agent 'bob' ..."."""
    detail = exc.diag.message_detail or ""
    if "is not present in table" not in detail or "=(" not in detail:
        return _first_line(exc)
    column = detail.split("(", 1)[1].split(")", 1)[0]
    value = detail.split("=(", 1)[1].split(")", 1)[0]
    if column in ("assignee", "to_agent", "name"):
        return f"no agent {value!r} (see `agentos agent list`)"
    if column == "parent_id":
        return f"no parent task {value}"
    if column == "depends_on_id":
        return f"no task {value} to depend on"
    if column == "task_id":
        return f"no task {value}"
    return _first_line(exc)


def _from_diag(exc: psycopg.Error) -> errors.KernelError:
    state = exc.sqlstate or ""
    msg = _first_line(exc)
    if state == "P0002":
        return errors.NotFound(msg)
    if state == "23514":
        return errors.InvalidTransition(msg)
    if state == "40001":
        return errors.StaleLease(msg)
    return errors.BadInput(msg)


class Kernel:
    """Owns the pool for one process; open() before use, close() at the end."""

    def __init__(self, settings: Settings, *, url: str | None = None, agent: bool = False) -> None:
        self.settings = settings
        self._url = url
        self._agent = agent
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._suspicious_until = 0.0
        self._pool_check: asyncio.Task[None] | None = None
        self._listener: bus.Listener | None = None
        # the process's time in kernel transactions: from asking the pool for a
        # connection to handing it back (committed), and how many there were
        self.db_seconds = 0.0
        self.db_transactions = 0

    @property
    def url(self) -> str:
        """The database URL (resolved on first use)."""
        if self._url is None:
            self._url = resolve_database_url(self.settings, agent=self._agent)
        return self._url

    async def open(self, *, min_size: int | None = None, max_size: int | None = None) -> Kernel:
        """Open the pool (and start the embedded server when it is the database)."""
        if self._pool is not None:
            return self
        url = self.url
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            url,
            min_size=self.settings.pool_min_size if min_size is None else min_size,
            max_size=self.settings.pool_max_size if max_size is None else max_size,
            kwargs={"row_factory": dict_row, "prepare_threshold": None},
            check=self._check_connection,
            open=False,
            name="agentos",
        )
        try:
            await pool.open(wait=True, timeout=15)
        except Exception as exc:
            await pool.close()
            raise errors.DatabaseUnavailable(f"cannot connect to the database: {exc}") from exc
        self._pool = pool
        return self

    async def subscribe(
        self, channels: Iterable[str], callback: bus.Subscriber | None = None
    ) -> bus.Listener:
        """The process's one listener (kernel/bus.py), LISTENing on these channels too;
        `callback(channel, payload)` is called for each notification. Closed by close()."""
        if self._listener is None:
            self._listener = bus.Listener(self.url, channels)
            if callback is not None:
                self._listener.subscribe(callback)
            return await self._listener.start()
        if callback is not None:
            self._listener.subscribe(callback)
        await self._listener.listen(channels)
        return self._listener

    async def ensure_schema(self) -> list[str]:
        """Apply pending migrations (cheap when there are none); the versions applied.
        Needs the schema owner's role (not an agent kernel)."""
        from agentos.kernel import migrate

        async with self.connection() as conn:
            st = await migrate.status(conn)
        if st.ok:
            return []
        conn = await self.connect(autocommit=True)
        try:
            return await migrate.migrate(conn)
        finally:
            await conn.close()

    async def close(self) -> None:
        """Close the listener and the pool."""
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        if self._pool_check is not None:
            self._pool_check.cancel()
            with contextlib.suppress(BaseException):
                await self._pool_check
            self._pool_check = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def __aenter__(self) -> Kernel:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A pooled connection; its block is one transaction (committed on success)."""
        if self._pool is None:
            raise RuntimeError("Kernel.open() was not called")
        t0 = time.perf_counter()
        try:
            with translate_errors():
                async with self._pool.connection() as conn:
                    yield conn
        except errors.DatabaseUnavailable as exc:
            if connection_lost(exc):
                self.connection_lost()
            raise
        finally:
            spent = time.perf_counter() - t0
            self.db_seconds += spent
            self.db_transactions += 1
            TOTALS["seconds"] += spent
            TOTALS["transactions"] += 1

    def connection_lost(self) -> None:
        """Note a lost connection: check pooled connections for a while (see above)."""
        self._suspicious_until = time.monotonic() + SUSPICION_SECONDS
        if self._pool is not None and (self._pool_check is None or self._pool_check.done()):
            self._pool_check = asyncio.create_task(self._check_pool(self._pool))

    async def _check_pool(self, pool: AsyncConnectionPool[Conn]) -> None:
        # drops the idle connections that died with the server, all at once
        try:
            await pool.check()
        except Exception as exc:
            log.debug("pool check failed: %s", exc)

    async def _check_connection(self, conn: Conn) -> None:
        # the pool's check callback: free while nothing went wrong lately
        if time.monotonic() < self._suspicious_until:
            await AsyncConnectionPool.check_connection(conn)

    async def retrying(
        self,
        work: Callable[[Conn], Awaitable[T]],
        *,
        deadline: float | None = None,
        what: str = "kernel call",
    ) -> T:
        """Run work(conn) in one pooled transaction; after a lost connection, run it again.

        Only for work whose repetition is harmless (it may have committed when the reply
        was lost). Retries with backoff until `deadline` seconds (default: one lease)
        have passed, then raises the last DatabaseUnavailable.
        """
        limit = self.settings.lease_seconds if deadline is None else deadline
        loop = asyncio.get_running_loop()
        end = loop.time() + limit
        delay = 0.05
        while True:
            try:
                async with self.connection() as conn:
                    return await work(conn)
            except errors.DatabaseUnavailable as exc:
                left = end - loop.time()
                if left <= 0:
                    raise
                log.info(
                    "%s failed (%s); retrying",
                    what,
                    exc,
                    extra={"action": "db.retry"},
                )
                await asyncio.sleep(min(delay, left))
                delay = min(delay * 2, 1.0)

    async def connect(self, *, autocommit: bool = True) -> Conn:
        """A dedicated (unpooled) connection, e.g. for LISTEN or pgqueuer's driver."""
        with translate_errors():
            return await psycopg.AsyncConnection.connect(
                self.url, autocommit=autocommit, row_factory=dict_row
            )
