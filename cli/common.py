"""Shared CLI plumbing: settings, the kernel, one-line errors, input checks, JSON output."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
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

BIGINT_MAX = 2**63 - 1  # ids are bigint; a larger one is bad input, not "not found"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
MAX_STDIN = 10 * 1024 * 1024  # what `-` reads at most; the kernel's limits are lower

ID = click.IntRange(1, BIGINT_MAX)


def budget_usd(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """Click callback: an amount of USD, finite, above 0, within numeric(14, 6).

    click.FloatRange lets "nan" through (every comparison with NaN is false).
    """
    if value is None:
        return None
    try:
        amount = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number of USD") from None
    if not math.isfinite(amount) or not 0 < amount <= 99_999_999:
        raise click.BadParameter(f"{value!r} is not a finite amount above 0 and at most 99999999")
    return amount


def safe(value: str, *, keep_newlines: bool = False) -> str:
    """value fit for the terminal: control characters escaped (see kernel.models.printable)."""
    from agentos.kernel.models import printable

    return printable(value, keep_newlines=keep_newlines)


def decode_text(stream: Any, what: str, limit: int = MAX_STDIN) -> str:
    """Read a binary stream as UTF-8 text; bad input is a one-line error (exit 2)."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        fail(f"{what} is larger than {limit} bytes", EXIT_BAD_INPUT)
    try:
        text: str = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"{what} is not valid UTF-8 (byte {exc.start + 1})", EXIT_BAD_INPUT)
        raise  # unreachable
    if "\x00" in text:
        fail(f"{what} contains a NUL byte (at character {text.index(chr(0)) + 1})", EXIT_BAD_INPUT)
    return text


def read_text(value: str, what: str) -> str:
    """An option's text; `-` reads it from stdin (for long or multi-line text)."""
    if value != "-":
        return value
    return decode_text(sys.stdin.buffer, f"{what} (stdin)")


async def check_role_known(conn: Any, role: str) -> None:
    """BadInput unless some agent could take work of `role`.

    A role is known when a role file defines it (shipped, AGENTOS_HOME/roles,
    AGENTOS_ROLES_DIR) or a registered agent has it (a pod whose files this machine
    does not see). The kernel cannot know role files: this check lives in the CLI.
    """
    from agentos.agents.config import AgentSettings, available_roles
    from agentos.kernel import views
    from agentos.kernel.errors import BadInput
    from agentos.kernel.models import ROLE_RE

    if not ROLE_RE.match(role):
        return  # the kernel refuses the name itself, with its own message
    s = AgentSettings()
    known = available_roles(s)
    if role in known:
        return
    if await views.role_has_agents(conn, role):
        return
    raise BadInput(
        f"unknown role {role!r} (known: {', '.join(known)}); to add it, write "
        f"{s.home / 'roles' / (role + '.yaml')} (or put it in AGENTOS_ROLES_DIR) and run "
        f"`agentos agent run --role {role}`"
    )


def settings() -> Settings:
    """Settings from the environment; a bad value is a one-line error."""
    from agentos.kernel.settings import Settings
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        _bad_setting(exc)
        raise  # unreachable


def person() -> str:
    """Who the person at this terminal is, for created_by and actor: AGENTOS_USER, else
    the login name (Settings.person: the same name messages, mission control and the
    dashboard use)."""
    return settings().person


def _bad_setting(exc: Exception) -> None:
    from agentos.kernel.models import first_error

    field, _, msg = first_error(exc).partition(":")
    fail(f"bad setting: AGENTOS_{field.upper()}: {safe(msg.strip())}", EXIT_BAD_INPUT)


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
            fail(
                safe(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__,
                exc.exit_code,
            )
        except KeyboardInterrupt:
            sys.exit(130)
        except UnicodeEncodeError as exc:
            # Non-UTF-8 bytes in an argument reach Python as surrogates (surrogateescape);
            # any the kernel's checks did not name are refused here, before the database.
            fail(f"input is not valid UTF-8 (character {exc.start + 1})", EXIT_BAD_INPUT)
        except Exception as exc:
            import psycopg
            from pydantic import ValidationError

            if isinstance(exc, ValidationError) and exc.title.endswith("Settings"):
                _bad_setting(exc)
            if isinstance(exc, psycopg.Error):
                diag = getattr(exc, "diag", None)
                msg = (diag.message_primary if diag else None) or str(exc) or type(exc).__name__
                code = EXIT_BAD_INPUT if isinstance(exc, psycopg.DataError) else EXIT_ERROR
                fail(f"database error: {safe(msg.strip().splitlines()[0])}", code)
            raise
        raise AssertionError("unreachable")

    return wrapper


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine to completion on a fresh event loop."""
    return asyncio.run(coro)  # type: ignore[arg-type]


def announce_embedded_start(s: Settings) -> None:
    """Say on stderr that a command is about to start the embedded server (decision 040).

    After `agentos stop` a read command starting it silently looked like nothing had
    stopped; a line on stderr keeps stdout clean for scripts and --json.
    """
    if not s.uses_embedded:
        return
    from agentos.kernel import embedded

    if embedded.running_server(s.pgdata) is None:
        click.echo(
            f"agentos: starting the embedded database at {s.pgdata} "
            "(it keeps running; `agentos stop` stops it)",
            err=True,
        )


async def open_kernel(*, migrate: bool = True, pool_max: int = 2) -> Kernel:
    """A Kernel on the configured database (embedded started if needed), schema current."""
    from agentos.kernel.db import Kernel

    s = settings()
    announce_embedded_start(s)
    kernel = Kernel(s)
    await kernel.open(min_size=1, max_size=pool_max)
    if migrate:
        await kernel.ensure_schema()
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
    """stdlib logging: text for people, JSON lines for machines; every line redacted.

    The credentials of this process's environment are registered with the redactor
    (kernel/redact.py) and the handler's filter replaces every registered secret value,
    including those this process decrypts later, by `[secret:NAME]`."""
    import os

    from agentos.kernel import redact

    redact.register_environment(os.environ)
    _register_database_passwords(os.environ)
    handler = logging.StreamHandler()
    handler.addFilter(redact.RedactingFilter())
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("psycopg.pool").setLevel(logging.WARNING)


# The `extra=` fields a JSON log line carries (when the call passed them): what
# happened, to which task, by which agent, in which attempt, how long it took. Only
# these, and only numbers and short strings: a log line never dumps an object.
LOG_FIELDS = ("action", "task", "agent", "role", "attempt", "duration_ms", "duty", "tool")


def _register_database_passwords(environ: Any) -> None:
    """The password of any database URL in the environment is a secret too."""
    from agentos.kernel import redact
    from psycopg.conninfo import conninfo_to_dict

    for name, value in environ.items():
        if name.endswith("DATABASE_URL") and value:
            try:
                password = conninfo_to_dict(value).get("password")
            except Exception:
                continue
            if password and len(str(password)) >= redact.MIN_LENGTH:
                redact.register(f"{name}_PASSWORD", str(password))


class _JsonFormatter(logging.Formatter):
    """One JSON object per line: the message and the `extra=` fields of LOG_FIELDS."""

    def format(self, record: logging.LogRecord) -> str:
        from agentos.kernel import redact

        out: dict[str, Any] = {
            "ts": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": redact.redact_text(record.getMessage()),
        }
        for name in LOG_FIELDS:
            value = getattr(record, name, None)
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, int | float):
                out[name] = value
            elif isinstance(value, str):
                out[name] = redact.redact_text(value[:200])
        if record.exc_info:
            # the redacting filter has put the redacted traceback in exc_text
            out["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(out)
