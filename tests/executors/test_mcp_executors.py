"""Executors get the role's MCP servers and their provider keys from the secrets store
(issue 10): the real Claude Code CLI calls an MCP tool through its per-run
--mcp-config; Codex's and OpenCode's MCP configuration is checked as a contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from agentos.agents.config import ExecutorOptions
from agentos.agents.executors.base import Plan
from agentos.agents.executors.claude_code import MCP_CONFIG
from agentos.agents.executors.registry import get_adapter
from agentos.tools.mcp import McpServerConfig, plan_server
from conftest import cli, cli_binary, query, task_status, wait_until

FIXTURE = Path(__file__).parents[1] / "tools" / "mcp" / "fixture_server.py"
SECRET = "mcp-exec-secret-" + "5" * 12
PROVIDER_KEY = "sk-ant-from-the-store-" + "7" * 12


def test_claude_code_calls_an_mcp_tool_with_its_key_from_the_secrets_store(  # type: ignore[no-untyped-def]
    fake, agents, exec_env, home, db_url
) -> None:
    server = fake("anthropic", tool_name="mcp__fixture__echo_env", tool_input={"name": "TOKEN"},
                  final_text="I read the token.")  # fmt: skip
    roles = home / "roles"
    roles.mkdir(parents=True, exist_ok=True)
    (roles / "worker.yaml").write_text(yaml.safe_dump({
        "executor": "claude-code",
        "executor_options": {"binary": cli_binary("claude-code"), "max_turns": 6},
        "mcp_servers": {"fixture": {"command": sys.executable, "args": [str(FIXTURE)],
                                    "env": {"TOKEN": "secret:FIXTURE_TOKEN"}}},
    }))  # fmt: skip
    exec_env.update(ANTHROPIC_BASE_URL=server.url)  # the key comes from the store only
    for name, value in (("FIXTURE_TOKEN", SECRET), ("ANTHROPIC_API_KEY", PROVIDER_KEY)):
        r = subprocess.run(
            [sys.executable, "-m", "agentos.cli.main", "secret", "set", name, "--scope",
             "role:worker"], env=exec_env, input=value, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
    r = cli(exec_env, "task", "create", "Read the token through MCP", "--json")
    tid = int(json.loads(r.stdout)["id"])
    agents("worker", "cc-mcp-worker")
    wait_until(lambda: task_status(db_url, tid) == "review", 150, "the task to reach review")

    first = server.model_requests()[0]
    offered = {t.get("name") for t in first.body.get("tools") or []}
    assert "mcp__fixture__echo_env" in offered, sorted(offered)
    assert first.headers.get("x-api-key") == PROVIDER_KEY  # the store's key reached the CLI
    rows = query(db_url, "SELECT kind, tool_name, content FROM agentos.steps WHERE task_id = %s "
                 "AND kind IN ('tool_call', 'tool_result') ORDER BY seq", (tid,))  # fmt: skip
    call = next(r for r in rows if r[0] == "tool_call" and r[1] == "mcp__fixture__echo_env")
    assert call[2]["arguments"] == {"name": "TOKEN"}
    result = next(r for r in rows if r[0] == "tool_result" and "TOKEN=" in r[2]["output"])
    assert "TOKEN=[secret:FIXTURE_TOKEN]" in result[2]["output"]  # the CLI wraps it in JSON
    assert not (home / "executors" / f"task-{tid}" / MCP_CONFIG).exists()
    from agentos.kernel.embedded import binary

    dump = subprocess.run([str(binary("pg_dump")), "--dbname", db_url], check=True,
                          capture_output=True, text=True).stdout  # fmt: skip
    assert SECRET not in dump and PROVIDER_KEY not in dump and "[secret:FIXTURE_TOKEN]" in dump


def _plan(tmp_path: Path, servers: list[Any], **env: str) -> Plan:
    return Plan(binary="cli", prompt="do it", prompt_file=tmp_path / "p.md", worktree=tmp_path,
                home=tmp_path, task_id=1, options=ExecutorOptions(), environ=env,
                mcp_servers=servers)  # fmt: skip


def _servers(tmp_path: Path) -> list[Any]:
    local = McpServerConfig(command="mcp-server-git", args=["--repository", "{worktree}"],
                            env={"GIT_TOKEN": "secret:GIT_TOKEN", "MODE": "ro"}, timeout=30,
                            tools=["git_log"])  # fmt: skip
    remote = McpServerConfig(url="https://mcp.example.com/mcp",
                             headers={"Authorization": "Bearer {secret:API_TOKEN}", "X-Team": "a"})  # fmt: skip
    secrets = {"GIT_TOKEN": "git-secret-value", "API_TOKEN": "api-secret-value"}
    return [plan_server("git", local, secrets, worktree=tmp_path),
            plan_server("issues", remote, secrets)]  # fmt: skip


def test_codex_gets_the_servers_as_overrides_and_their_secrets_in_its_environment(
    tmp_path: Path,
) -> None:
    adapter = get_adapter("codex")
    plan = _plan(tmp_path, _servers(tmp_path), OPENAI_API_KEY="sk-openai-0000")
    argv = adapter.argv(plan)
    joined = " ".join(argv)
    assert "git-secret-value" not in joined and "api-secret-value" not in joined
    overrides = [argv[i + 1] for i, a in enumerate(argv) if a == "-c"]
    assert 'mcp_servers.git.command="mcp-server-git"' in overrides
    assert f'mcp_servers.git.args=["--repository","{tmp_path}"]' in overrides
    assert 'mcp_servers.git.env={"MODE"="ro"}' in overrides
    assert 'mcp_servers.git.env_vars=["GIT_TOKEN"]' in overrides
    assert 'mcp_servers.git.enabled_tools=["git_log"]' in overrides
    assert "mcp_servers.git.tool_timeout_sec=30" in overrides
    assert 'mcp_servers.issues.url="https://mcp.example.com/mcp"' in overrides
    assert 'mcp_servers.issues.http_headers={"X-Team"="a"}' in overrides
    assert (
        'mcp_servers.issues.env_http_headers={"Authorization"="MCP_ISSUES_AUTHORIZATION"}'
        in overrides
    )
    env = adapter.env(plan)
    assert env["GIT_TOKEN"] == "git-secret-value"
    assert env["MCP_ISSUES_AUTHORIZATION"] == "Bearer api-secret-value"
    assert env["OPENAI_API_KEY"] == "sk-openai-0000"
    clash = [*_servers(tmp_path),
             plan_server("other", McpServerConfig(command="x", env={"GIT_TOKEN": "secret:O"}),
                         {"O": "another-value"})]  # fmt: skip
    try:
        adapter.argv(_plan(tmp_path, clash))
    except ValueError as exc:
        assert "two MCP servers need GIT_TOKEN" in str(exc)
    else:
        raise AssertionError("a clash of secret names must be refused")


def test_opencode_and_claude_code_get_the_servers_in_their_config(tmp_path: Path) -> None:
    plan = _plan(tmp_path, _servers(tmp_path))
    config = json.loads(get_adapter("opencode").env(plan)["OPENCODE_CONFIG_CONTENT"])
    assert config["mcp"]["git"] == {
        "type": "local",
        "command": ["mcp-server-git", "--repository", str(tmp_path)],
        "environment": {"GIT_TOKEN": "git-secret-value", "MODE": "ro"},
        "enabled": True,
        "timeout": 30000,
    }
    assert config["mcp"]["issues"]["headers"]["Authorization"] == "Bearer api-secret-value"
    claude = get_adapter("claude-code")
    claude.prepare(plan)
    path = tmp_path / MCP_CONFIG
    assert path.stat().st_mode & 0o777 == 0o600
    written = json.loads(path.read_text())["mcpServers"]
    assert written["git"]["env"]["GIT_TOKEN"] == "git-secret-value"
    assert written["issues"] == {"type": "http", "url": "https://mcp.example.com/mcp",
                                 "headers": {"Authorization": "Bearer api-secret-value",
                                             "X-Team": "a"}}  # fmt: skip
    argv = claude.argv(plan)
    assert argv[argv.index("--mcp-config") + 1] == str(path) and "--strict-mcp-config" in argv
    assert "git-secret-value" not in " ".join(argv)
    env = claude.env(plan)  # it waits for the servers' tools before its first request
    assert env["MCP_CONNECTION_NONBLOCKING"] == "false" and env["MCP_TIMEOUT"] == "30000"
    bare = _plan(tmp_path, [])
    claude.prepare(bare)
    assert not path.exists() and "--mcp-config" not in claude.argv(bare)
