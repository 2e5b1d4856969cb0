"""Seen from outside (issue 12): /metrics of a real `agentos agent run` and of a real
`agentos start` after real work on the scripted model, and the JSON log lines."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client.parser import text_string_to_metric_families

SECRET = "sk-test-metrics-0123456789abcdef"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):  # a strict parse of the format
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    """The sum of `name` over the samples that carry these labels (others free)."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= lab)


def _has(samples: dict[Any, float], name: str, **labels: str) -> bool:
    want = set(labels.items())
    return any(n == name and want <= lab for (n, lab) in samples)


def test_agent_run_serves_metrics_and_logs_json_fields_without_secrets(
    team_env: dict[str, str],
    db_url: str,
    tmp_path: Path,
    wait_for: Callable[..., Any],
) -> None:
    port = _port()
    env = {**team_env, "AGENTOS_LOG_FORMAT": "json", "OPENAI_API_KEY": SECRET}
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        argv = ["agent", "run", "--role", "worker", "--name", "m1", "--health-port", str(port)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "agentos.cli.main", *argv],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_for(
            "SELECT count(*) FROM agentos.agent_status WHERE name = 'm1' AND alive",
            lambda rows: rows[0][0] == 1,
            timeout=120,
        )
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO agentos.tasks (title, role) VALUES ('metrics note', 'worker'), "
                "('later', 'reviewer')"
            )
        wait_for(
            "SELECT status FROM agentos.tasks WHERE title = 'metrics note'",
            lambda rows: rows and rows[0][0] == "review",
            timeout=180,
        )
        samples = _scrape(port)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=10) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        proc.wait(60)
    assert _value(samples, "agentos_claims_total", role="worker") == 1
    assert _value(samples, "agentos_claim_seconds_count", role="worker") >= 1
    assert _value(samples, "agentos_work_total", role="worker", outcome="completed") == 1
    assert (
        _value(samples, "agentos_stage_outcomes_total", role="worker", outcome="submit_for_review")
        == 1
    )
    calls = _value(
        samples, "agentos_llm_calls_total", agent="m1", model="agentos/scripted", outcome="ok"
    )
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*), sum(prompt_tokens), sum(completion_tokens), sum(cost_usd) "
            "FROM agentos.llm_calls WHERE agent = 'm1'"
        ).fetchone()
    assert row is not None
    assert calls == row[0] >= 4  # the metric counts exactly what llm_calls recorded
    assert _value(samples, "agentos_llm_tokens_total", agent="m1", kind="prompt") == row[1]
    assert _value(samples, "agentos_llm_tokens_total", agent="m1", kind="completion") == row[2]
    assert abs(_value(samples, "agentos_llm_cost_usd_total", agent="m1") - float(row[3])) < 1e-6
    assert _value(samples, "agentos_llm_call_seconds_count", model="agentos/scripted") == calls
    # read from the database at scrape time: no reviewer runs, so the reviewer's own task
    # and the worker's task handed to review are both ready
    assert _value(samples, "agentos_queue_depth", role="reviewer", state="ready") == 2
    assert _has(samples, "agentos_queue_depth", role="worker", state="running")
    assert _value(samples, "agentos_agent_slots", role="worker") == 1
    assert _value(samples, "agentos_db_seconds_total") > 0
    assert _value(samples, "agentos_db_transactions_total") > 10
    assert _value(samples, "process_resident_memory_bytes") > 0

    text = log_path.read_text()
    assert SECRET not in text
    lines = [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]
    assert lines and all({"ts", "level", "logger", "message"} <= ln.keys() for ln in lines)
    (ended,) = [ln for ln in lines if ln.get("action") == "agent.submit_for_review"]
    assert ended["agent"] == "m1" and ended["role"] == "worker" and ended["attempt"] == 1
    assert isinstance(ended["task"], int) and ended["duration_ms"] > 0


def test_agentos_start_serves_its_own_and_its_agents_metrics(tmp_path: Path) -> None:
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_")}
    env.update(
        AGENTOS_HOME=str(tmp_path / "home"),
        AGENTOS_POLL_INTERVAL="0.5",
        AGENTOS_LEASE_SECONDS="3",
        AGENTOS_LEADER_TTL_SECONDS="3",
    )
    log = open(tmp_path / "start.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentos.cli.main", "start", "--demo", "--metrics-port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        end = time.monotonic() + 240
        while "DEMO: goal #1 is done" not in (tmp_path / "start.log").read_text():
            assert proc.poll() is None, (tmp_path / "start.log").read_text()[-3000:]
            assert time.monotonic() < end, (tmp_path / "start.log").read_text()[-3000:]
            time.sleep(0.5)
        samples = _scrape(port)
    finally:
        proc.terminate()
        proc.wait(90)
        log.close()
    processes = {dict(lab).get("process") for (_, lab) in samples}
    assert {"supervisor", "team"} <= processes
    # the team's agents did the work: claims by role, the LLM calls of the demo
    assert _value(samples, "agentos_claims_total", process="team", role="orchestrator") >= 1
    assert _value(samples, "agentos_claims_total", process="team", role="worker") >= 2
    assert _value(samples, "agentos_claims_total", process="team", role="reviewer") >= 2
    assert _value(samples, "agentos_llm_calls_total", process="team", outcome="ok") >= 10
    assert _value(samples, "agentos_stage_outcomes_total", process="team", outcome="approve") >= 2
    # served once, by the supervisor: the queue depth it read from the database
    assert _has(samples, "agentos_queue_depth", process="supervisor")
    assert not _has(samples, "agentos_queue_depth", process="team")
    assert _value(samples, "agentos_database_restarts_total", process="supervisor") == 0
    assert _value(samples, "process_resident_memory_bytes", process="supervisor") > 0
    assert _value(samples, "process_resident_memory_bytes", process="team") > 0
