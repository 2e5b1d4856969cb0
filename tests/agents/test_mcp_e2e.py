"""MCP servers, secrets and skills end to end (issue 10): real `agentos agent run`
processes, real MCP servers, the scripted model or a local OpenAI-compatible server.

The canary secret is injected into an MCP server's environment and must appear nowhere
else: not in a full pg_dump of the database, not in the agent's log, not in anything the
model was sent; where a tool printed it, `[secret:NAME]` stands in its place."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tests.conftest import agentos

TOOLS = Path(os.environ.get("AGENTOS_TEST_TOOLS_DIR", "/opt/agentos-test-tools"))
TIME = TOOLS / "mcp" / "bin" / "mcp-server-time"
FIXTURE = Path(__file__).parents[1] / "tools" / "mcp" / "fixture_server.py"
CANARY = "mcp-canary-" + uuid.uuid4().hex
MARK = "[secret:CANARY_TOKEN]"


def _need_time_server() -> str:
    if not os.access(TIME, os.X_OK):
        pytest.skip(f"mcp-server-time is not installed at {TIME} (.ci/run installs it)")
    return str(TIME)


def _role(home: Path, **fields: Any) -> None:
    roles = home / "roles"
    roles.mkdir(parents=True, exist_ok=True)
    (roles / "worker.yaml").write_text(yaml.safe_dump(fields))


def _servers() -> dict[str, Any]:
    return {
        "time": {"command": _need_time_server()},
        "fixture": {
            "command": sys.executable,
            "args": [str(FIXTURE)],
            "env": {"CANARY": "secret:CANARY_TOKEN"},
            "timeout": 20,
        },
    }


def _ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def _task(env: dict[str, str], title: str, *args: str) -> int:
    r = _ok(agentos(env, "task", "create", title, "--json", *args))
    return int(json.loads(r.stdout)["id"])


def _rows(db_url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()


def _results(db_url: str, tid: int) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for name, content in _rows(
        db_url,
        "SELECT tool_name, content FROM agentos.steps WHERE task_id = %s AND kind = 'tool_result' "
        "ORDER BY seq",
        (tid,),
    ):
        out.setdefault(name, []).append(content)
    return out


def _pg_dump(url: str) -> str:
    from agentos.kernel.embedded import binary

    return subprocess.run(
        [str(binary("pg_dump")), "--dbname", url], check=True, capture_output=True, text=True
    ).stdout


def _status(db_url: str, tid: int) -> str:
    return str(_rows(db_url, "SELECT status::text FROM agentos.tasks WHERE id = %s", (tid,))[0][0])


def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_builtin_loop_calls_mcp_tools_and_the_secret_appears_nowhere(
    team_env: dict[str, str], spawn: Any, db_url: str, tmp_path: Path
) -> None:
    home = Path(team_env["AGENTOS_HOME"])
    _role(home, mcp_servers=_servers())
    _ok(agentos(team_env, "secret", "set", "CANARY_TOKEN", "--scope", "role:worker",
                input=CANARY + "\n"))  # fmt: skip
    calls = (
        '[call mcp__time__get_current_time {"timezone": "UTC"}] '
        '[call mcp__fixture__echo_env {"name": "CANARY"}] '
        "[call mcp__fixture__crash {}] "
        '[call mcp__fixture__add {"a": 2, "b": 3}]'
    )
    tid = _task(team_env, "Use the MCP tools", "-d", calls)
    worker = spawn("worker", "mcp-worker", AGENTOS_LOG_LEVEL="DEBUG")
    _wait(lambda: _status(db_url, tid) == "review", 120, "the task to reach review")
    assert worker.poll() is None, "the agent must survive a server crashing mid-call"

    results = _results(db_url, tid)
    now = json.loads(results["mcp__time__get_current_time"][0]["output"])
    assert results["mcp__time__get_current_time"][0]["ok"] and now["timezone"] == "UTC"
    assert results["mcp__fixture__echo_env"][0] == {"ok": True, "output": f"CANARY={MARK}"}
    crash = results["mcp__fixture__crash"][0]
    assert not crash["ok"] and "stopped during the call to crash" in crash["output"]
    assert results["mcp__fixture__add"][0] == {"ok": True, "output": "5"}
    assert "submit_for_review" in results  # the stage went on to its end
    log = (tmp_path / "mcp-worker.log").read_text()
    assert "mcp-worker" in log and CANARY not in log
    dump = _pg_dump(db_url)
    assert CANARY not in dump and MARK in dump and "CANARY_TOKEN" in dump


class ScriptedOpenAI:
    """A local OpenAI-compatible server that plays a list of assistant messages in order
    (one per request) and records every request."""

    def __init__(self, replies: list[dict[str, Any]]) -> None:
        self.replies = replies
        self.seen: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.seen.append(body)
                n = min(len(fake.seen), len(fake.replies)) - 1
                msg = fake.replies[n]
                reply = {
                    "id": f"r{n}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "message": msg,
                                 "finish_reason": "tool_calls" if msg.get("tool_calls") else "stop"}],
                    "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
                }  # fmt: skip
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


def _tool_call(i: int, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": f"call_{i}", "type": "function",
                        "function": {"name": tool, "arguments": json.dumps(args)}}],
    }  # fmt: skip


@pytest.fixture
def openai_server() -> Iterator[Callable[[list[dict[str, Any]]], ScriptedOpenAI]]:
    started: list[ScriptedOpenAI] = []

    def start(replies: list[dict[str, Any]]) -> ScriptedOpenAI:
        started.append(ScriptedOpenAI(replies))
        return started[-1]

    yield start
    for s in started:
        s.server.shutdown()


def test_an_openai_compatible_model_sees_the_mcp_tools_and_never_the_secret(
    team_env: dict[str, str], spawn: Any, db_url: str, tmp_path: Path, openai_server: Any
) -> None:
    server = openai_server(
        [
            _tool_call(1, "mcp__fixture__echo_env", {"name": "CANARY"}),
            _tool_call(2, "mcp__time__get_current_time", {"timezone": "Europe/Paris"}),
            _tool_call(3, "block", {"reason": "done looking"}),
        ]
    )
    env = team_env  # the spawn fixture starts agents with this very environment
    del env["AGENTOS_DEMO"]
    env.update(AGENTOS_MODEL="openai/local-model", AGENTOS_LLM_BASE_URL=server.url,
               AGENTOS_LLM_API_KEY="sk-local-llm-key")  # fmt: skip
    home = Path(env["AGENTOS_HOME"])
    _role(home, mcp_servers=_servers())
    _ok(agentos(env, "secret", "set", "CANARY_TOKEN", input=CANARY))
    tid = _task(env, "Look around with the MCP tools")
    spawn("worker", "llm-worker")
    _wait(lambda: _status(db_url, tid) == "blocked", 120, "the task to be blocked")

    assert len(server.seen) == 3
    offered = {t["function"]["name"] for t in server.seen[0]["tools"]}
    assert {"mcp__fixture__echo_env", "mcp__time__get_current_time", "read_file", "block"} <= (
        offered
    )
    echo = next(
        t for t in server.seen[0]["tools"] if t["function"]["name"] == "mcp__time__get_current_time"
    )
    assert echo["function"]["parameters"]["required"] == ["timezone"]
    tool_msgs = [m for m in server.seen[1]["messages"] if m["role"] == "tool"]
    assert tool_msgs[-1]["content"] == f"CANARY={MARK}"
    paris = [m for m in server.seen[2]["messages"] if m["role"] == "tool"][-1]["content"]
    assert json.loads(paris)["timezone"] == "Europe/Paris"
    everything = json.dumps(server.seen)
    assert CANARY not in everything
    assert CANARY not in (tmp_path / "llm-worker.log").read_text()
    assert CANARY not in _pg_dump(db_url)


def test_a_server_that_cannot_start_blocks_the_task_not_the_agent(
    team_env: dict[str, str], spawn: Any, db_url: str
) -> None:
    _role(Path(team_env["AGENTOS_HOME"]), mcp_servers={"broken": {"command": "/no/such/server"}})
    tid = _task(team_env, "Needs a broken server")
    worker = spawn("worker", "broken-worker")
    _wait(lambda: _status(db_url, tid) == "blocked", 90, "the task to be blocked")
    (error,) = _rows(db_url, "SELECT error FROM agentos.tasks WHERE id = %s", (tid,))[0]
    assert error.startswith("MCP server broken of role worker failed to start")
    assert "program not found (/no/such/server)" in error and "\n" not in error
    assert worker.poll() is None


def test_an_unknown_secret_is_a_one_line_error_when_the_agent_starts(
    team_env: dict[str, str], spawn: Any, tmp_path: Path
) -> None:
    servers = {"fixture": {"command": sys.executable, "args": [str(FIXTURE)],
                           "env": {"TOKEN": "secret:NEVER_SET"}}}  # fmt: skip
    _role(Path(team_env["AGENTOS_HOME"]), mcp_servers=servers)
    worker = spawn("worker", "nosecret-worker")
    assert worker.wait(60) == 2
    lines = (tmp_path / "nosecret-worker.log").read_text().strip().splitlines()
    assert lines[-1] == (
        "error: role worker: MCP server fixture: unknown secret NEVER_SET "
        "(`agentos secret set NEVER_SET --scope role:worker` sets it)"
    )


def test_role_and_task_skills_are_in_the_prompt(
    team_env: dict[str, str], spawn: Any, db_url: str, tmp_path: Path
) -> None:
    style = tmp_path / "style.md"
    style.write_text("Always write the test first. STYLE-MARKER-1\n")
    review = tmp_path / "review.md"
    review.write_text("Name the acceptance criterion in the commit. REVIEW-MARKER-2\n")
    _ok(agentos(team_env, "skill", "add", "house-style", str(style), "-d", "how we code"))
    _ok(agentos(team_env, "skill", "add", "commit-notes", str(review)))
    _role(Path(team_env["AGENTOS_HOME"]), skills=["house-style"])
    bad = agentos(team_env, "task", "create", "x", "--skill", "no-such-skill")
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "error: no skill 'no-such-skill' (see `agentos skill list`)"
    )
    tid = _task(team_env, "Skilled work", "--skill", "commit-notes")
    spawn("worker", "skilled-worker")
    _wait(lambda: _status(db_url, tid) == "review", 120, "the task to reach review")
    (prompt,) = _rows(db_url, "SELECT content->>'text' FROM agentos.steps WHERE task_id = %s "
                      "AND kind = 'user' ORDER BY seq LIMIT 1", (tid,))[0]  # fmt: skip
    assert "## Skill house-style: how we code" in prompt and "STYLE-MARKER-1" in prompt
    assert "## Skill commit-notes" in prompt and "REVIEW-MARKER-2" in prompt


def test_a_secret_set_with_another_key_blocks_the_task_with_the_reason(
    team_env: dict[str, str], spawn: Any, db_url: str
) -> None:
    from agentos.kernel.secrets import generate_key

    _role(Path(team_env["AGENTOS_HOME"]), mcp_servers=_servers())
    _ok(agentos(team_env, "secret", "set", "CANARY_TOKEN", input=CANARY))
    tid = _task(team_env, "Needs the canary")
    spawn("worker", "otherkey-worker", AGENTOS_SECRET_KEY=generate_key())
    _wait(lambda: _status(db_url, tid) == "blocked", 90, "the task to be blocked")
    (error,) = _rows(db_url, "SELECT error FROM agentos.tasks WHERE id = %s", (tid,))[0]
    assert error.startswith("MCP server fixture of role worker: secret CANARY_TOKEN (global) "
                            "was set with another key"), error  # fmt: skip
    assert CANARY not in _pg_dump(db_url)
