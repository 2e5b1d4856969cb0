"""MCP servers as tools (issue 10), against real servers: mcp-server-time and
mcp-server-git from PyPI and @modelcontextprotocol/server-filesystem from npm (installed
by .ci/run under AGENTOS_TEST_TOOLS_DIR), and a fixture server built with the real `mcp`
server library (tests/tools/mcp/fixture_server.py) that misbehaves on purpose."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from agentos.agents.config import AgentSettings, load_role
from agentos.kernel import errors
from agentos.tools.base import ToolContext
from agentos.tools.mcp import (
    McpServerConfig,
    McpToolset,
    McpUnavailable,
    discover,
    plan_server,
    server_readable,
)

TOOLS = Path(os.environ.get("AGENTOS_TEST_TOOLS_DIR", "/opt/agentos-test-tools"))
TIME = TOOLS / "mcp" / "bin" / "mcp-server-time"
GIT = TOOLS / "mcp" / "bin" / "mcp-server-git"
FILESYSTEM = TOOLS / "node_modules" / ".bin" / "mcp-server-filesystem"
FIXTURE = Path(__file__).parent / "mcp" / "fixture_server.py"


def need(path: Path) -> str:
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path.name} is not installed at {path} (.ci/run installs it)")
    return str(path)


def fixture_config(**kw: Any) -> McpServerConfig:
    return McpServerConfig(command=sys.executable, args=[str(FIXTURE)], **kw)


def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(kernel=None, agent="a", role="worker", task_id=1, worktree=tmp_path)


@pytest.fixture
async def fixture_tools(tmp_path: Path) -> AsyncIterator[McpToolset]:
    plan = plan_server(
        "fixture",
        fixture_config(env={"CANARY": "secret:CANARY_TOKEN"}, timeout=2, output_cap=1000),
        {"CANARY_TOKEN": "canary-value-31415"},
        worktree=tmp_path,
        task_id=7,
    )
    async with McpToolset([plan], role="worker") as ts:
        yield ts


def by_name(ts: McpToolset) -> dict[str, Any]:
    return {t.name: t for t in ts.tools}


async def test_time_server_tools_are_discovered_namespaced_and_called(tmp_path: Path) -> None:
    plan = plan_server("time", McpServerConfig(command=need(TIME)), {}, worktree=tmp_path)
    async with McpToolset([plan], role="worker") as ts:
        tools = by_name(ts)
        assert set(tools) == {"mcp__time__get_current_time", "mcp__time__convert_time"}
        schema = tools["mcp__time__get_current_time"].schema()
        assert schema["function"]["parameters"]["required"] == ["timezone"]
        assert "(MCP server time)" in schema["function"]["description"]
        res = await tools["mcp__time__get_current_time"].call(ctx(tmp_path), '{"timezone": "UTC"}')
        assert res.ok, res.output
        assert json.loads(res.output)["timezone"] == "UTC"
        bad = await tools["mcp__time__get_current_time"].call(ctx(tmp_path), "{}")
        assert not bad.ok and "bad arguments" in bad.output and "timezone" in bad.output


def _repo(path: Path) -> Path:
    path.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    (path / "notes.md").write_text("first line of the notes\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "seed commit"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True)
    return path


async def test_git_and_filesystem_servers_get_the_worktree(tmp_path: Path) -> None:
    worktree = _repo(tmp_path / "wt")
    plans = [
        plan_server(
            "git",
            McpServerConfig(command=need(GIT), args=["--repository", "{worktree}"]),
            {},
            worktree=worktree,
        ),
        plan_server(
            "fs",
            McpServerConfig(
                command=need(FILESYSTEM),
                args=["{worktree}"],
                tools=["read_text_file", "list_directory"],
            ),
            {},
            worktree=worktree,
        ),
    ]
    async with McpToolset(plans, role="worker") as ts:
        tools = by_name(ts)
        assert {"mcp__git__git_log", "mcp__git__git_status"} <= set(tools)
        assert {n for n in tools if n.startswith("mcp__fs__")} == {
            "mcp__fs__read_text_file", "mcp__fs__list_directory"}  # fmt: skip
        log = await tools["mcp__git__git_log"].call(ctx(worktree), {"repo_path": str(worktree)})
        assert log.ok and "seed commit" in log.output, log.output
        text = await tools["mcp__fs__read_text_file"].call(
            ctx(worktree), {"path": str(worktree / "notes.md")}
        )
        assert text.ok and "first line of the notes" in text.output, text.output
        outside = await tools["mcp__fs__read_text_file"].call(
            ctx(worktree), {"path": "/etc/hostname"}
        )
        assert not outside.ok and "denied" in outside.output.lower(), outside.output


async def test_a_stdio_server_gets_only_its_own_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixture_tools: McpToolset
) -> None:
    tools = by_name(fixture_tools)
    names = (await tools["mcp__fixture__env_names"].call(ctx(tmp_path), {})).output.split()
    assert "CANARY" in names
    assert not [n for n in names if n.startswith("AGENTOS_") or "DATABASE" in n], names
    assert set(names) <= {"CANARY", "HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG",
                          "LC_CTYPE", "PWD"}, names  # fmt: skip
    # the secret reached the server; what comes back is redacted once registered
    got = await tools["mcp__fixture__echo_env"].call(ctx(tmp_path), {"name": "CANARY"})
    assert got.output == "CANARY=canary-value-31415"  # registration is the kernel's job


async def test_a_server_that_crashes_mid_call_is_an_error_result_and_restarts(
    tmp_path: Path, fixture_tools: McpToolset
) -> None:
    tools = by_name(fixture_tools)
    crash = await tools["mcp__fixture__crash"].call(ctx(tmp_path), {})
    assert not crash.ok
    assert "stopped during the call to crash" in crash.output and "started again" in crash.output
    after = await tools["mcp__fixture__add"].call(ctx(tmp_path), {"a": 2, "b": 3})
    assert after.ok and after.output == "5"
    for _ in range(3):
        await tools["mcp__fixture__crash"].call(ctx(tmp_path), {})
    gone = await tools["mcp__fixture__add"].call(ctx(tmp_path), {"a": 1, "b": 1})
    assert not gone.ok and "unavailable for the rest of this stage" in gone.output


async def test_timeouts_output_caps_and_tool_errors(
    tmp_path: Path, fixture_tools: McpToolset
) -> None:
    tools = by_name(fixture_tools)
    t0 = time.monotonic()
    slow = await tools["mcp__fixture__hang"].call(ctx(tmp_path), {"seconds": 30})
    assert time.monotonic() - t0 < 10
    assert not slow.ok and "did not answer within 2 s" in slow.output
    big = await tools["mcp__fixture__flood"].call(ctx(tmp_path), {"chars": 200_000})
    assert big.ok and len(big.output) < 1100 and "characters cut" in big.output
    failed = await tools["mcp__fixture__fail"].call(ctx(tmp_path), {"reason": "nope"})
    assert not failed.ok and failed.output.startswith("error: ")
    typed = await tools["mcp__fixture__add"].call(ctx(tmp_path), {"a": "two", "b": 3})
    assert not typed.ok and "bad arguments for mcp__fixture__add" in typed.output


@pytest.mark.parametrize(
    ("config", "expect"),
    [
        ({"command": "/no/such/mcp-server"}, "program not found (/no/such/mcp-server)"),
        ({"command": sys.executable, "args": [str(FIXTURE), "--die-at-start"]},
         "its stderr: fixture: cannot start (told to die)"),
        ({"command": "sleep", "args": ["30"], "startup_timeout": 1}, "did not answer within 1 s"),
        ({"command": sys.executable, "args": [str(FIXTURE)], "tools": ["nope"]},
         "has no tool 'nope'"),
        ({"url": "http://127.0.0.1:9/mcp", "startup_timeout": 5}, "failed to start (http:"),
    ],
)  # fmt: skip
async def test_a_server_that_cannot_start_is_one_clear_line(
    tmp_path: Path, config: dict[str, Any], expect: str
) -> None:
    plan = plan_server("bad", McpServerConfig(**config), {}, worktree=tmp_path)
    with pytest.raises(McpUnavailable) as err:
        async with McpToolset([plan], role="worker"):
            pass
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("MCP server bad of role worker ") and expect in msg
    (report,) = await discover([plan], role="worker")
    assert not report.ok and expect in report.error


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server() -> Iterator[tuple[str, str]]:
    token = "http-token-27182818"
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(FIXTURE), "--http", str(port)],
        env={**os.environ, "FIXTURE_TOKEN": token},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp", token
    finally:
        proc.terminate()
        proc.wait(10)


async def test_a_streamable_http_server_gets_its_secret_header(
    tmp_path: Path, http_server: tuple[str, str]
) -> None:
    url, token = http_server
    cfg = McpServerConfig(url=url, headers={"Authorization": "Bearer {secret:FIXTURE_TOKEN}"})
    plan = plan_server("remote", cfg, {"FIXTURE_TOKEN": token})
    assert plan.headers == {"Authorization": f"Bearer {token}"}
    assert plan.secret_headers == {"Authorization"} and token not in plan.describe()
    async with McpToolset([plan], role="worker") as ts:
        res = await by_name(ts)["mcp__remote__add"].call(ctx(tmp_path), {"a": 40, "b": 2})
        assert res.ok and res.output == "42"
    refused = plan_server("remote", cfg, {"FIXTURE_TOKEN": "wrong-token-000"})
    with pytest.raises(McpUnavailable, match="MCP server remote of role worker failed to start"):
        async with McpToolset([refused], role="worker"):
            pass


BAD_ROLES = [
    ("mcp_servers: {time: {command: x, url: 'http://a'}}", "give exactly one of command"),
    ("mcp_servers: {Time_1: {command: x}}", "bad server name 'Time_1'"),
    ("mcp_servers: {t: {command: x, args: ['{secret:A}']}}", "a secret may not be an argument"),
    ("mcp_servers: {t: {command: x, env: {AGENTOS_DATABASE_URL: y}}}", "is AgentOS's own"),
    ("mcp_servers: {t: {command: x, env: {T: 'secret:bad-name'}}}", "not a secret reference"),
    ("mcp_servers: {t: {command: x, tools: [a, a]}}", "duplicate tool name 'a'"),
    ("mcp_servers: {t: {command: x, headers: {A: b}}}", "headers are for an HTTP server"),
    ("mcp_servers: {t: {command: x}, t: {command: y}}", "duplicate key 't'"),
    ("mcp_servers: {t: {command: x, timeout: 0}}", "timeout"),
    ("mcp_servers: {t: {url: 'ftp://x'}}", "is not an http(s) URL"),
    ("mcp_servers: {t: {url: 'http://x/?k={secret:K}'}}", "may not be part of a URL"),
    ("tools: [read_file, read_file]", "duplicate name 'read_file'"),
    ("tools: [mcp__time__x]", "MCP tools come from mcp_servers"),
    ("executor_options: {pass_env: [AGENTOS_DATABASE_URL]}", "is AgentOS's own"),
    ("skills: [a, a]", "duplicate name 'a'"),
]


@pytest.mark.parametrize(("yaml_text", "expect"), BAD_ROLES)
def test_every_bad_configuration_is_a_one_line_error(
    tmp_path: Path, yaml_text: str, expect: str
) -> None:
    roles = tmp_path / "roles"
    roles.mkdir()
    (roles / "worker.yaml").write_text(yaml_text + "\n")
    settings = AgentSettings(home=tmp_path / "home", roles_dir=roles)
    with pytest.raises(errors.BadInput) as err:
        load_role("worker", settings)
    msg = str(err.value)
    assert msg.startswith("role worker: ") and "\n" not in msg and expect in msg, msg


def test_tool_list_shows_mcp_tools_their_source_and_errors(tmp_path: Path) -> None:
    roles = tmp_path / "roles"
    roles.mkdir()
    (roles / "worker.yaml").write_text(
        f"mcp_servers:\n  time: {{command: {need(TIME)}}}\n  broken: {{command: /no/such/server}}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_")}
    env.update(AGENTOS_HOME=str(tmp_path / "home"), AGENTOS_ROLES_DIR=str(roles))
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "agentos.cli.main", *a], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    r = run("tool", "list", "--role", "worker", "--json")
    assert r.returncode == 0, r.stderr
    rows = {x["name"]: x for x in json.loads(r.stdout)}
    assert rows["mcp__time__get_current_time"]["source"] == "mcp:time"
    assert rows["read_file"]["source"] == "built-in"
    broken = rows["mcp__broken__*"]
    assert broken["kind"] == "server" and broken["enabled"] is False
    assert "program not found (/no/such/server)" in broken["error"]
    text = run("tool", "list", "--role", "worker")
    assert "mcp__time__convert_time" in text.stdout and "[error: MCP server broken" in text.stdout
    (roles / "worker.yaml").write_text("mcp_servers: {t: {command: x, url: 'http://a'}}\n")
    bad = run("tool", "list", "--role", "worker")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "give exactly one of command" in bad.stderr


def test_tool_list_says_why_the_browser_is_unavailable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_")}
    env.update(AGENTOS_HOME=str(tmp_path / "home"), AGENTOS_BROWSER_EXECUTABLE="/no/chromium")
    r = subprocess.run([sys.executable, "-m", "agentos.cli.main", "tool", "list", "--role",
                        "worker", "--json"], env=env, capture_output=True, text=True)  # fmt: skip
    rows = {x["name"]: x for x in json.loads(r.stdout)}
    assert rows["browser_open"]["enabled"] is False
    assert rows["browser_open"]["unavailable"].startswith("no chromium at /no/chromium")


def test_the_worker_offers_the_browser_where_chromium_runs(tmp_path: Path) -> None:
    from agentos.agents.toolbox import builtin_tools
    from agentos.tools import browser

    role = load_role("worker", AgentSettings(home=tmp_path))
    tools, missing = builtin_tools(role)
    names = {t.name for t in tools}
    if browser.unavailable() is None:
        assert {"browser_open", "browser_snapshot"} <= names and not missing
    else:
        assert not names & set(missing) and "browser_open" in missing


def test_what_an_executors_sandbox_must_see_of_a_stdio_server(tmp_path: Path) -> None:
    """Its program's install tree and the script files its arguments name (a server under
    /tmp, hidden by the sandbox's private /tmp, still starts); never a directory an
    argument names, nor a file under AGENTOS_HOME."""
    script = tmp_path / "srv" / "server.py"
    script.parent.mkdir()
    script.write_text("print('hi')\n")
    home = tmp_path / "agentos-home"
    home.mkdir()
    (home / "secret.key").write_text("x")
    plan = plan_server(
        "s",
        McpServerConfig(
            command=sys.executable,
            args=[str(script), "--root", str(tmp_path), str(home / "secret.key"), "relative.py"],
        ),
        {},
        worktree=tmp_path,
    )
    seen = server_readable(plan, never_under=[home])
    assert Path(os.path.realpath(script)) in seen
    assert Path(os.path.realpath(tmp_path)) not in seen  # a directory: never
    assert all(not p.is_relative_to(home.resolve()) for p in seen)
    assert any(Path(sys.executable).resolve().is_relative_to(p) for p in seen)  # the program
    http = plan_server("h", McpServerConfig(url="http://127.0.0.1:1/mcp"), {}, worktree=tmp_path)
    assert server_readable(http) == []
