"""The composition root: one Kernel owns the connection pool and is passed down.

There are no module-level pools. A process builds one Kernel from Settings, opens it,
and hands it to whatever needs the database. LISTEN connections are separate
(see bus.Listener): a pooled connection is never left listening.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import psycopg
from agentos.kernel import errors
from agentos.kernel.settings import Settings
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

Conn = psycopg.AsyncConnection[dict[str, Any]]
P = ParamSpec("P")
T = TypeVar("T")


def resolve_database_url(settings: Settings, start_embedded: bool = True) -> str:
    """The URL to use: AGENTOS_DATABASE_URL, else the embedded server (started if needed)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    from agentos.kernel import embedded

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

    def __init__(self, settings: Settings, *, url: str | None = None) -> None:
        self.settings = settings
        self._url = url
        self._pool: AsyncConnectionPool[Conn] | None = None

    @property
    def url(self) -> str:
        """The database URL (resolved on first use)."""
        if self._url is None:
            self._url = resolve_database_url(self.settings)
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

    async def close(self) -> None:
        """Close the pool."""
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
        with translate_errors():
            async with self._pool.connection() as conn:
                yield conn

    async def connect(self, *, autocommit: bool = True) -> Conn:
        """A dedicated (unpooled) connection, e.g. for LISTEN or pgqueuer's driver."""
        with translate_errors():
            return await psycopg.AsyncConnection.connect(
                self.url, autocommit=autocommit, row_factory=dict_row
            )
