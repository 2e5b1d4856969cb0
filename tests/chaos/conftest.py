"""Chaos fixtures: real agent processes, real git, real PostgreSQL, faults injected.

Each test records its figures with `figure(...)`: they are printed by the test and
again at the end of the run ("chaos figures"), so a plain `pytest` shows them.
docs/benchmarks.md ("Chaos") quotes them with the command that measured them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print every chaos figure of the run in one section."""
    if FIGURES:
        terminalreporter.section("chaos figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Callable[..., None]:
    """figure(key=value, ...): print and remember this test's measured figures."""

    def record(**values: Any) -> None:
        text = ", ".join(
            f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
        )
        line = f"{request.node.name}: {text}"
        print(f"CHAOS {line}", flush=True)
        FIGURES.append(line)

    return record


def base_env(home: Path, **extra: str) -> dict[str, str]:
    """Agent environment: the scripted model, short leases, INFO logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_")}
    env.update(
        AGENTOS_HOME=str(home),
        AGENTOS_DEMO="1",
        AGENTOS_POLL_INTERVAL="0.5",
        AGENTOS_LEASE_SECONDS="3",
        AGENTOS_LEADER_TTL_SECONDS="3",
        AGENTOS_LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


@pytest.fixture
def team_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for agent processes on this test's database (session server)."""
    return base_env(tmp_path / "home", AGENTOS_DATABASE_URL=db_url)


class Procs:
    """Processes started by a test; all stopped at the end (SIGCONT first)."""

    def __init__(self, env: dict[str, str], logdir: Path) -> None:
        self.env = env
        self.logdir = logdir
        self.procs: list[subprocess.Popen[str]] = []
        self.logs: dict[int, Path] = {}

    def start(self, argv: list[str], log_name: str, **extra_env: str) -> subprocess.Popen[str]:
        """Start `python -m agentos.cli.main ARGV` with its output in LOG_NAME.log."""
        path = self.logdir / f"{log_name}.log"
        with open(path, "a") as log:
            p = subprocess.Popen(
                [sys.executable, "-m", "agentos.cli.main", *argv],
                env={**self.env, **extra_env},
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        self.procs.append(p)
        self.logs[p.pid] = path
        return p

    def agent(self, role: str, name: str, **extra_env: str) -> subprocess.Popen[str]:
        """Start `agentos agent run --role ROLE --name NAME`."""
        return self.start(["agent", "run", "--role", role, "--name", name], name, **extra_env)

    def log(self, p: subprocess.Popen[str]) -> str:
        """What the process has written so far."""
        return self.logs[p.pid].read_text(errors="replace")

    def stop_all(self) -> None:
        """SIGCONT (a stopped process cannot exit), SIGTERM, then SIGKILL after 30 s."""
        for p in self.procs:
            if p.poll() is None:
                with _suppress():
                    p.send_signal(signal.SIGCONT)
                    p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], ProcessLookupError)  # type: ignore[arg-type]


@pytest.fixture
def procs(team_env: dict[str, str], tmp_path: Path) -> Iterator[Procs]:
    """Start agent processes on the session server; all are stopped at the end."""
    p = Procs(team_env, tmp_path)
    yield p
    p.stop_all()


def wait_until(
    url: str,
    sql: str,
    check: Callable[[list[tuple[Any, ...]]], bool],
    *,
    timeout: float,
    params: tuple[Any, ...] = (),
    every: float = 0.1,
) -> list[tuple[Any, ...]]:
    """Poll a query until check(rows); database errors (a restarting server) are retried."""
    end = time.monotonic() + timeout
    rows: list[tuple[Any, ...]] = []
    last_error = ""
    while time.monotonic() < end:
        try:
            with psycopg.connect(url, connect_timeout=3) as conn:
                rows = conn.execute(sql, params).fetchall()
            if check(rows):
                return rows
        except psycopg.Error as exc:  # down, restarting, or not migrated yet
            last_error = str(exc).strip().splitlines()[0]
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s; last rows: {rows} {last_error}")


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one query and return its rows."""
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the real CLI."""
    return subprocess.run(
        [sys.executable, "-m", "agentos.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def create_task(url: str, title: str, role: str = "worker", **columns: Any) -> int:
    """INSERT a task as a person would with psql (the triggers enqueue its work)."""
    cols = {"title": title, "role": role, "created_by": "chaos", **columns}
    names = ", ".join(cols)
    marks = ", ".join(["%s"] * len(cols))
    with psycopg.connect(url) as conn:
        row = conn.execute(
            f"INSERT INTO agentos.tasks ({names}) VALUES ({marks}) RETURNING id",  # type: ignore[arg-type]
            tuple(cols.values()),
        ).fetchone()
    assert row is not None
    return int(row[0])


def git(repo: Path, *args: str) -> str:
    """Run git in repo; its stdout."""
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


def duplicate_tool_results(url: str, task_ids: list[int] | None = None) -> list[tuple[Any, ...]]:
    """Tool calls with more than one recorded result (a completed call run again)."""
    return query(
        url,
        "SELECT task_id, stage, tool_call_id, count(*) FROM agentos.steps "
        "WHERE kind = 'tool_result' AND (%s::bigint[] IS NULL OR task_id = ANY(%s::bigint[])) "
        "GROUP BY 1, 2, 3 HAVING count(*) > 1",
        (task_ids, task_ids),
    )


@pytest.fixture(scope="session")
def chaos() -> Any:
    """The helpers above (tests cannot import conftest under --import-mode=importlib)."""
    return sys.modules[__name__]
