"""Fixtures for end-to-end agent tests: real processes, real git, the scripted model."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest


@pytest.fixture
def team_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for agent processes on this test's database, with the scripted model."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_")}
    env.update(
        AGENTOS_DATABASE_URL=db_url,
        AGENTOS_HOME=str(tmp_path / "home"),
        AGENTOS_DEMO="1",
        AGENTOS_POLL_INTERVAL="0.5",
        AGENTOS_LEASE_SECONDS="3",
        AGENTOS_LEADER_TTL_SECONDS="3",
        AGENTOS_LOG_LEVEL="INFO",
    )
    return env


@pytest.fixture
def spawn(
    team_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start `agentos agent run` processes; all are stopped at the end."""
    procs: list[subprocess.Popen[str]] = []

    def start(role: str, name: str, **extra_env: str) -> subprocess.Popen[str]:
        log = open(tmp_path / f"{name}.log", "w")
        p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agentos.cli.main",
                "agent",
                "run",
                "--role",
                role,
                "--name",
                name,
            ],
            env={**team_env, **extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.fixture
def wait_for(db_url: str) -> Callable[..., Any]:
    """Poll a SQL query until check(rows) is true."""

    def wait(
        sql: str,
        check: Callable[[list[tuple[Any, ...]]], bool],
        timeout: float = 120,
        params: tuple[Any, ...] = (),
    ) -> list[tuple[Any, ...]]:
        end = time.monotonic() + timeout
        rows: list[tuple[Any, ...]] = []
        while time.monotonic() < end:
            with psycopg.connect(db_url) as conn:
                rows = conn.execute(sql, params).fetchall()
            if check(rows):
                return rows
            time.sleep(0.2)
        raise AssertionError(f"timed out; last rows: {rows}")

    return wait
