"""Shared CLI plumbing: settings, the kernel, one-line errors, JSON output."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

if TYPE_CHECKING:
    from agentos.kernel.db import Kernel
    from agentos.kernel.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_INPUT = 2


def settings() -> Settings:
    """Settings from the environment; a bad value is a one-line error."""
    from agentos.kernel.models import first_error
    from agentos.kernel.settings import Settings
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        fail(
            f"bad setting: AGENTOS_{first_error(exc).upper().split(':')[0]}: "
            f"{first_error(exc).split(':', 1)[-1].strip()}",
            EXIT_BAD_INPUT,
        )
        raise  # unreachable


def fail(message: str, code: int = EXIT_ERROR) -> None:
    """Print `error: message` on stderr and exit with code."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def handle_errors(fn: Callable[P, T]) -> Callable[P, T]:
    """Turn kernel errors into one-line messages and exit codes (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        from agentos.kernel.errors import KernelError

        try:
            return fn(*args, **kwargs)
        except KernelError as exc:
            fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, exc.exit_code)
        except KeyboardInterrupt:
            sys.exit(130)
        except Exception as exc:
            import psycopg

            if isinstance(exc, psycopg.Error):
                diag = getattr(exc, "diag", None)
                msg = (diag.message_primary if diag else None) or str(exc) or type(exc).__name__
                fail(f"database error: {msg.strip().splitlines()[0]}", EXIT_ERROR)
            raise
        raise AssertionError("unreachable")

    return wrapper


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine to completion on a fresh event loop."""
    return asyncio.run(coro)  # type: ignore[arg-type]


async def open_kernel(*, migrate: bool = True, pool_max: int = 2) -> Kernel:
    """A Kernel on the configured database (embedded started if needed), schema current."""
    from agentos.kernel.db import Kernel

    kernel = Kernel(settings())
    await kernel.open(min_size=1, max_size=pool_max)
    if migrate:
        await ensure_schema(kernel)
    return kernel


def with_conn(fn: Callable[[Any], Awaitable[T]]) -> T:
    """Open the kernel, run fn(conn) in one transaction, close; returns fn's result."""

    async def _go() -> T:
        kernel = await open_kernel()
        try:
            async with kernel.connection() as conn:
                return await fn(conn)
        finally:
            await kernel.close()

    return run(_go())


async def ensure_schema(kernel: Kernel) -> list[str]:
    """Apply pending migrations (cheap when there are none)."""
    from agentos.kernel import migrate as mig

    async with kernel.connection() as conn:
        st = await mig.status(conn)
    if st.ok:
        return []
    conn2 = await kernel.connect(autocommit=True)
    try:
        return await mig.migrate(conn2)
    finally:
        await conn2.close()


def to_jsonable(obj: Any) -> Any:
    """pydantic models and lists of them to plain JSON values."""
    from pydantic import BaseModel

    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, list):
        return [to_jsonable(o) for o in obj]
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    return obj


def echo_json(obj: Any) -> None:
    """Print obj as JSON on one line."""
    click.echo(json.dumps(to_jsonable(obj), default=str))


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """stdlib logging: text for people, JSON lines for machines."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("psycopg.pool").setLevel(logging.WARNING)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if hasattr(record, "action"):
            out["action"] = record.action
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)
