"""One `agentos agent run` process hosting 1,000 workers (issue 12): one session, and
they register, wake and claim through at most 40 server connections."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

CONNECTIONS = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def test_a_thousand_workers_in_one_process_on_at_most_40_connections(
    team_env: dict[str, str],
    db_url: str,
    tmp_path: Path,
    wait_for: Callable[..., Any],
) -> None:
    log = open(tmp_path / "wide.log", "w")
    argv = ["agent", "run", "--role", "worker", "--name", "w", "--concurrency", "1000"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentos.cli.main", *argv],
        env=team_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            while not done.is_set():
                row = conn.execute(CONNECTIONS).fetchone()
                peak[0] = max(peak[0], row[0] if row else 0)
                time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        wait_for(
            "SELECT count(*) FROM agentos.agent_status WHERE role = 'worker' AND alive",
            lambda rows: rows[0][0] == 1000,
            timeout=180,
        )
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO agentos.tasks (title, role) "
                "SELECT 'wide note ' || g, 'worker' FROM generate_series(1, 6) AS g"
            )
        # the scripted worker writes, tests, commits and hands each task to review
        wait_for(
            "SELECT count(*) FROM agentos.tasks WHERE status = 'review'",
            lambda rows: rows[0][0] == 6,
            timeout=240,
        )
        assert proc.poll() is None, (tmp_path / "wide.log").read_text()[-3000:]
    finally:
        done.set()
        sampler.join(10)
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    with psycopg.connect(db_url, autocommit=True) as conn:
        sessions = conn.execute("SELECT count(*) FROM agentos.agent_sessions").fetchone()
        claims = conn.execute(
            "SELECT task_id, count(*) FROM agentos.activities WHERE kind = 'task.in_progress' "
            "GROUP BY task_id ORDER BY task_id"
        ).fetchall()
        agents = conn.execute(
            "SELECT count(*) FROM agentos.agents WHERE role = 'worker'"
        ).fetchone()
    assert sessions == (1,)  # one session for the process, not one per agent
    assert agents == (1000,)
    assert [n for _, n in claims] == [1] * 6  # each task claimed once
    # pool (capped at 32) + listener + claim connection, and the start-up's migration
    # check; the sampler's own connection is not counted
    print(f"WIDE-HOST: 1000 workers, peak server connections {peak[0]}")
    assert 0 < peak[0] <= 40, peak[0]
    assert proc.returncode == 0, (tmp_path / "wide.log").read_text()[-3000:]
