"""The role's MCP servers reach the Gemini CLI executor: the real `gemini` CLI against the
fake Gemini API calls a tool of the real fixture MCP server (a secret from the store in
the server's environment), through a 0600 settings file of the run's own that is gone
when the stage ends; the steps name the tool mcp__<server>__<tool>."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from agentos.agents.config import ExecutorOptions
from agentos.agents.executors.base import Plan
from agentos.agents.executors.claude_code import MCP_CONFIG
from agentos.agents.executors.gemini import NO_VAR, mcp_settings
from agentos.agents.executors.registry import get_adapter
from agentos.tools.mcp import McpServerConfig, plan_server
from conftest import (
    CANARY,
    cli,
    cli_binary,
    no_canary,
    processes_with,
    query,
    task_status,
    wait_until,
)

FIXTURE = Path(__file__).parents[1] / "tools" / "mcp" / "fixture_server.py"
# a `$` and a `\$` in the value: Gemini expands variables twice, the value must survive
SECRET = "mcp-gemini-secret-$HOME-\\$x-" + "6" * 12
PROVIDER_KEY = "gemini-key-from-the-store-" + "8" * 12
HTTP_TOKEN = "http-$token-\\$-" + "3" * 12  # the fixture's HTTP mode wants Bearer <it>


def _function_responses(body: dict[str, Any]) -> list[str]:
    return [
        json.dumps(p["functionResponse"])
        for c in body.get("contents") or []
        for p in c.get("parts") or []
        if isinstance(p, dict) and "functionResponse" in p
    ]


def test_gemini_calls_an_mcp_tool_with_a_secret_from_the_store(  # type: ignore[no-untyped-def]
    fake, agents, exec_env, home, db_url, tmp_path
) -> None:
    server = fake("gemini", tool_name="mcp_fixture_echo_env", tool_input={"name": "TOKEN"},
                  final_text="I read the token.")  # fmt: skip
    roles = home / "roles"
    roles.mkdir(parents=True, exist_ok=True)
    (roles / "worker.yaml").write_text(yaml.safe_dump({
        "executor": "gemini-cli",
        "executor_options": {"binary": cli_binary("gemini-cli"), "model": "gemini-fake"},
        "mcp_servers": {"fixture": {"command": sys.executable, "args": [str(FIXTURE)],
                                    "env": {"TOKEN": "secret:FIXTURE_TOKEN", "MODE": "ro"},
                                    "tools": ["echo_env"]}},
    }))  # fmt: skip
    exec_env.update(GOOGLE_GEMINI_BASE_URL=server.url)  # the key comes from the store only
    for name, value in (("FIXTURE_TOKEN", SECRET), ("GEMINI_API_KEY", PROVIDER_KEY)):
        r = subprocess.run(
            [sys.executable, "-m", "agentos.cli.main", "secret", "set", name, "--scope",
             "role:worker"], env=exec_env, input=value, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
    server.hold()  # look at the run while the CLI waits on its first model turn
    r = cli(exec_env, "task", "create", "Read the token through MCP", "--json")
    tid = int(json.loads(r.stdout)["id"])
    agents("worker", "gem-mcp-worker")
    assert server.held.wait(120), "gemini never asked the model"
    private = home / "executors" / f"task-{tid}"
    settings = private / MCP_CONFIG
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600
    entry = json.loads(settings.read_text())["mcpServers"]["fixture"]
    assert entry["env"]["MODE"] == "ro" and entry["includeTools"] == ["echo_env"]
    assert entry["command"] == sys.executable and entry["args"] == [str(FIXTURE)]
    # the secret is in that file only: in no process's command line (nor bubblewrap's)
    assert not processes_with(SECRET) and not processes_with(entry["env"]["TOKEN"])
    server.release()
    wait_until(lambda: task_status(db_url, tid) == "review", 150, "the task to reach review")

    first, second = server.model_requests()[:2]
    offered = {f.get("name") for t in first.body.get("tools") or []
               for f in t.get("functionDeclarations") or []}  # fmt: skip
    assert "mcp_fixture_echo_env" in offered, sorted(offered)
    assert "mcp_fixture_add" not in offered  # tools: [echo_env] is Gemini's includeTools
    assert first.headers.get("x-goog-api-key") == PROVIDER_KEY  # the store's key reached it
    # the server got the secret as it is: its answer reaches the model's next request
    assert any(f"TOKEN={json.dumps(SECRET)[1:-1]}" in r for r in _function_responses(second.body))
    rows = query(db_url, "SELECT kind, tool_name, content FROM agentos.steps WHERE task_id = %s "
                 "AND kind IN ('tool_call', 'tool_result') ORDER BY seq", (tid,))  # fmt: skip
    call = next(r for r in rows if r[0] == "tool_call")
    assert call[1] == "mcp__fixture__echo_env" and call[2]["arguments"] == {"name": "TOKEN"}
    result = next(r for r in rows if r[0] == "tool_result")
    assert result[1] == "mcp__fixture__echo_env" and result[2]["ok"] is True
    assert "TOKEN=[secret:FIXTURE_TOKEN]" in result[2]["output"]
    wait_until(lambda: not settings.exists(), 10, "the MCP settings file to be removed")
    # nothing was written into the user's worktree or repository for Gemini
    strays = [p for p in home.rglob(".gemini") if private not in p.parents]
    assert not strays, strays
    from agentos.kernel.embedded import binary

    dump = subprocess.run([str(binary("pg_dump")), "--dbname", db_url], check=True,
                          capture_output=True, text=True).stdout  # fmt: skip
    assert SECRET not in dump and PROVIDER_KEY not in dump and "[secret:FIXTURE_TOKEN]" in dump
    for log in tmp_path.glob("*.log"):
        text = log.read_text(errors="replace")
        assert SECRET not in text and PROVIDER_KEY not in text, log


@pytest.fixture
def http_fixture() -> Iterator[str]:
    """The fixture MCP server over streamable HTTP, refusing all but `Bearer HTTP_TOKEN`."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([sys.executable, str(FIXTURE), "--http", str(port)],
                            env={**os.environ, "FIXTURE_TOKEN": HTTP_TOKEN},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def test_gemini_reaches_a_streamable_http_server_with_its_secret_header(  # type: ignore[no-untyped-def]
    fake, agents, exec_env, home, db_url, http_fixture
) -> None:
    server = fake("gemini", tool_name="mcp_remote_add", tool_input={"a": 40, "b": 2},
                  final_text="The sum is 42.")  # fmt: skip
    roles = home / "roles"
    roles.mkdir(parents=True, exist_ok=True)
    (roles / "worker.yaml").write_text(yaml.safe_dump({
        "executor": "gemini-cli",
        "executor_options": {"binary": cli_binary("gemini-cli"), "model": "gemini-fake"},
        "mcp_servers": {"remote": {"url": http_fixture,
                                   "headers": {"Authorization": "Bearer {secret:FIXTURE_TOKEN}"}}},
    }))  # fmt: skip
    exec_env.update(GOOGLE_GEMINI_BASE_URL=server.url, GEMINI_API_KEY=CANARY)
    r = subprocess.run(
        [sys.executable, "-m", "agentos.cli.main", "secret", "set", "FIXTURE_TOKEN", "--scope",
         "role:worker"], env=exec_env, input=HTTP_TOKEN, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = cli(exec_env, "task", "create", "Add 40 and 2 through MCP", "--json")
    tid = int(json.loads(r.stdout)["id"])
    agents("worker", "gem-http-worker")
    wait_until(lambda: task_status(db_url, tid) == "review", 150, "the task to reach review")

    first, second = server.model_requests()[:2]
    offered = {f.get("name") for t in first.body.get("tools") or []
               for f in t.get("functionDeclarations") or []}  # fmt: skip
    assert {"mcp_remote_add", "mcp_remote_echo_env"} <= offered, sorted(offered)
    assert any("42" in r for r in _function_responses(second.body))  # the server answered
    rows = query(db_url, "SELECT kind, tool_name, content FROM agentos.steps WHERE task_id = %s "
                 "AND kind IN ('tool_call', 'tool_result') ORDER BY seq", (tid,))  # fmt: skip
    assert rows[0][:2] == ("tool_call", "mcp__remote__add")
    assert rows[0][2]["arguments"] == {"a": 40, "b": 2}
    assert rows[1][:2] == ("tool_result", "mcp__remote__add")
    assert rows[1][2]["ok"] is True and "42" in rows[1][2]["output"]
    wait_until(lambda: not (home / "executors" / f"task-{tid}" / MCP_CONFIG).exists(), 10,
               "the MCP settings file to be removed")  # fmt: skip
    from agentos.kernel.embedded import binary

    dump = subprocess.run([str(binary("pg_dump")), "--dbname", db_url], check=True,
                          capture_output=True, text=True).stdout  # fmt: skip
    assert HTTP_TOKEN not in dump
    no_canary(db_url)


def _plan(tmp_path: Path, servers: list[Any]) -> Plan:
    return Plan(binary="gemini", prompt="do it", prompt_file=tmp_path / "p.md",
                worktree=tmp_path, home=tmp_path, task_id=1, options=ExecutorOptions(),
                environ={"GEMINI_API_KEY": "gk-0000"}, mcp_servers=servers)  # fmt: skip


def test_gemini_settings_give_each_value_as_it_is_and_steps_name_mcp_tools(
    tmp_path: Path,
) -> None:
    local = McpServerConfig(command="mcp-server-git", args=["--repository", "{worktree}", "a$b"],
                            env={"GIT_TOKEN": "secret:GIT_TOKEN", "MODE": "ro"}, timeout=90,
                            tools=["git_log"])  # fmt: skip
    remote = McpServerConfig(url="https://mcp.example.com/mcp",
                             headers={"Authorization": "Bearer {secret:API_TOKEN}", "X-Team": "a"})  # fmt: skip
    secrets = {"GIT_TOKEN": "git-$ecret", "API_TOKEN": "api-secret-value"}
    servers = [plan_server("my-git", local, secrets, worktree=tmp_path),
               plan_server("issues", remote, secrets)]  # fmt: skip
    settings = mcp_settings(servers)
    dollar = "${" + NO_VAR + ":-$}"  # Gemini expands it to `$` when it loads the settings
    git = settings["mcpServers"]["my-git"]
    assert git == {
        "command": "mcp-server-git",
        "args": ["--repository", str(tmp_path), f"a{dollar}b"],
        # expanded again when the server starts, where `\$` is a `$`
        "env": {"GIT_TOKEN": f"git-\\{dollar}ecret", "MODE": "ro"},
        "cwd": str(tmp_path),
        "timeout": 90000,
        "trust": True,
        "includeTools": ["git_log"],
    }
    assert settings["mcpServers"]["issues"] == {
        "httpUrl": "https://mcp.example.com/mcp",
        "headers": {"Authorization": "Bearer api-secret-value", "X-Team": "a"},
        "timeout": 60000,  # the default timeout (a call), longer than startup_timeout
        "trust": True,
    }

    adapter = get_adapter("gemini-cli")
    plan = _plan(tmp_path, servers)
    adapter.prepare(plan)
    path = tmp_path / MCP_CONFIG
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and json.loads(path.read_text()) == settings
    argv = adapter.argv(plan)
    assert argv[argv.index("--allowed-mcp-server-names") + 1] == "my-git,issues"
    assert "ecret" not in " ".join(argv) and "api-secret" not in " ".join(argv)
    run_env = adapter.env(plan)
    assert run_env == {"GEMINI_API_KEY": "gk-0000", "GEMINI_CLI_SYSTEM_SETTINGS_PATH": str(path)}
    # Gemini's tool names become AgentOS's, the result named after its call
    events = adapter.parse(json.dumps({"type": "tool_use", "tool_name": "mcp_my-git_git_log",
                                       "tool_id": "t1", "parameters": {}}))  # fmt: skip
    events += adapter.parse(json.dumps({"type": "tool_result", "tool_id": "t1",
                                        "status": "success", "output": "ok"}))  # fmt: skip
    assert [(e.kind, e.tool_name) for e in events] == [
        ("tool_call", "mcp__my-git__git_log"), ("tool_result", "mcp__my-git__git_log")]  # fmt: skip
    shell = adapter.parse(json.dumps({"type": "tool_use", "tool_name": "run_shell_command",
                                      "tool_id": "t2", "parameters": {}}))  # fmt: skip
    assert shell[0].tool_name == "run_shell_command"

    bare = _plan(tmp_path, [])
    fresh = get_adapter("gemini-cli")
    fresh.prepare(bare)  # a run without servers: no file, no flag, no variable
    assert not path.exists() and "--allowed-mcp-server-names" not in fresh.argv(bare)
    assert "GEMINI_CLI_SYSTEM_SETTINGS_PATH" not in fresh.env(bare)
    assert os.listdir(tmp_path / ".gemini") == ["settings.json"]
