"""Fixtures for end-to-end agent tests: real processes, real git, the scripted model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
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


class FakeOpenAI:
    """A local OpenAI-compatible chat server whose model always answers `content` with
    no tool call (the wire API litellm's openai provider speaks); it records requests."""

    def __init__(self, content: str, usage: tuple[int, int] = (7, 1)) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.seen: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.seen.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), **body}
                )
                reply = {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": content},
                        }
                    ],
                    "usage": {
                        "prompt_tokens": usage[0],
                        "completion_tokens": usage[1],
                        "total_tokens": sum(usage),
                    },
                }
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()


@pytest.fixture
def fake_openai() -> Iterator[Callable[..., FakeOpenAI]]:
    """Start FakeOpenAI servers (`fake_openai("pong")`); all are stopped at the end."""
    servers: list[FakeOpenAI] = []

    def start(content: str, usage: tuple[int, int] = (7, 1)) -> FakeOpenAI:
        servers.append(FakeOpenAI(content, usage))
        return servers[-1]

    yield start
    for s in servers:
        s.close()
