"""The sandbox with real bubblewrap: each escape of issue 14 tried through the shell tool.

A fake AGENTOS_HOME holds the task's worktree, a sibling worktree, a "pgdata" with a
listening Unix socket, and a workspace repository; the agent process is a real child
Python with canaries in its environment. Every test here failed before the sandbox
(commands ran as the agent's user, in its network, with /proc of the host).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from agentos.tools.base import ToolContext
from agentos.tools.sandbox import SandboxSettings, sandbox_status

PYTHON_DIRS = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
STATUS = sandbox_status(SandboxSettings(unsafe_no_sandbox=False))
needs_sandbox = pytest.mark.skipif(not STATUS.available, reason=f"no sandbox here: {STATUS.reason}")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake AGENTOS_HOME for this test (the sandbox hides it)."""
    h = tmp_path / "agentos-home"
    h.mkdir()
    monkeypatch.setenv("AGENTOS_HOME", str(h))
    monkeypatch.delenv("AGENTOS_WORKSPACE", raising=False)
    monkeypatch.delenv("AGENTOS_UNSAFE_NO_SANDBOX", raising=False)
    return h


@pytest.fixture
def hctx(home: Path) -> ToolContext:
    """A tool context whose worktree is AGENTOS_HOME/worktrees/task-7, as in production."""
    wt = home / "worktrees" / "task-7"
    wt.mkdir(parents=True)
    return ToolContext(
        kernel=None, agent="worker-1", role="worker", task_id=7, worktree=wt, shell_timeout=20
    )


@pytest.fixture
def unix_server(home: Path) -> Iterator[Path]:
    """A listening Unix socket where the embedded server's is: AGENTOS_HOME/pgdata."""
    pgdata = home / "pgdata"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("16\n")
    path = pgdata / ".s.PGSQL.5432"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    try:
        yield pgdata
    finally:
        server.close()


@pytest.fixture
def tcp_server() -> Iterator[int]:
    """A TCP service on the host's 127.0.0.1 that answers 'hello' to anyone."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = False

    def serve() -> None:
        while not stop:
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.sendall(b"hello\n")

    import threading

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop = True
        thread.join(2)
        server.close()


def _out(r) -> str:  # type: ignore[no-untyped-def]
    assert r.ok, r.output
    return str(r.output)


# ------------------------------------------------------------ credentials ----


@needs_sandbox
def test_proc_environ_of_the_agent_shows_no_canary(hctx: ToolContext, home: Path) -> None:
    # The agent process is a real child with the canaries in its *initial* environment,
    # the one /proc/<pid>/environ shows; the command asks /proc for its parent's.
    canary = "canary-3f9a1c0d"
    script = textwrap.dedent(
        f"""
        import asyncio, json
        from pathlib import Path
        from agentos.tools.base import ToolContext
        from agentos.tools.registry import ALL_TOOLS
        ctx = ToolContext(kernel=None, agent="w", role="worker", task_id=7,
                          worktree=Path({str(hctx.worktree)!r}), shell_timeout=20)
        cmd = ("cat /proc/$PPID/environ; echo; cat /proc/1/environ; echo; env; "
               "cat /proc/*/environ; cat /proc/*/cmdline; ps -ef 2>/dev/null")
        r = asyncio.run(ALL_TOOLS["run_command"].call(ctx, {{"command": cmd}}))
        print(json.dumps({{"ok": r.ok, "output": r.output}}))
        """
    )
    env = {
        **os.environ,
        "AGENTOS_HOME": str(home),
        "OPENAI_API_KEY": f"sk-{canary}",
        "AGENTOS_DATABASE_URL": f"postgresql://agentos:{canary}@db/agentos",
        "SOMETHING_ELSE": canary,  # not secret-named: dropped by the allow-list all the same
    }
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"], result["output"]
    assert canary not in result["output"]
    assert "HOME=/tmp/home" in result["output"]  # the command did print its environment


@needs_sandbox
async def test_only_the_sandbox_processes_are_visible(hctx: ToolContext, call) -> None:
    out = _out(await call(hctx, "run_command", {"command": "echo $$ $PPID; ls /proc"}))
    pids = [int(p) for p in out.split() if p.isdigit()]
    assert max(pids) < 10 and str(os.getpid()) not in out.split()
    out = _out(await call(hctx, "run_command", {"command": "hostname"}))
    assert out.splitlines()[1] == "agentos-sandbox"


# --------------------------------------------------------------- database ----


@needs_sandbox
async def test_the_database_socket_is_unreachable(
    hctx: ToolContext, unix_server: Path, call
) -> None:
    sock = unix_server / ".s.PGSQL.5432"
    code = (
        f"import socket; s = socket.socket(socket.AF_UNIX); s.connect({str(sock)!r}); print('IN')"
    )
    out = _out(await call(hctx, "run_command", {"command": f'{sys.executable} -c "{code}" 2>&1'}))
    assert "IN" not in out.splitlines()[1:] and "No such file or directory" in out
    out = _out(await call(hctx, "run_command", {"command": f"ls -A {unix_server}; echo end"}))
    assert "PG_VERSION" not in out and ".s.PGSQL" not in out
    if shutil.which("psql"):
        cmd = f"psql -h {unix_server} -U postgres -c 'select 1' 2>&1; echo rc=$?"
        out = _out(await call(hctx, "run_command", {"command": cmd}))
        assert "rc=2" in out and "No such file or directory" in out, out


@needs_sandbox
async def test_system_socket_dirs_and_the_users_home_are_hidden(hctx: ToolContext, call) -> None:
    real_home = Path.home()
    out = _out(await call(hctx, "run_command", {"command": "ls -A /run; echo end"}))
    assert out.splitlines()[1:] == ["end"], out
    out = _out(await call(hctx, "run_command", {"command": f"ls -A {real_home}; echo end"}))
    # only the way to the Python the agent runs with (bound back read-only) is there
    allowed = {d.relative_to(real_home).parts[0] for d in PYTHON_DIRS if real_home in d.parents}
    assert set(out.splitlines()[1:-1]) <= allowed, out


# ------------------------------------------------------------------ files ----


@needs_sandbox
async def test_writes_outside_the_worktree_do_not_reach_the_host(
    hctx: ToolContext, home: Path, call, tmp_path: Path
) -> None:
    sibling = home / "worktrees" / "task-8"
    sibling.mkdir(parents=True)
    (sibling / "code.py").write_text("print('task 8')\n")
    marker = f"probe-{os.getpid()}"
    cmd = (
        f"touch /tmp/{marker}; touch $HOME/{marker}; touch {Path.home()}/{marker}; "
        f"touch {tmp_path}/{marker}; echo pwned > {sibling}/code.py; "
        f"cat {sibling}/code.py; ls -A {home}; touch mine.txt; echo done"
    )
    out = _out(await call(hctx, "run_command", {"command": cmd}))
    assert out.splitlines()[-1] == "done"
    for path in (Path("/tmp") / marker, Path.home() / marker, tmp_path / marker):
        assert not path.exists(), path
    assert (sibling / "code.py").read_text() == "print('task 8')\n"
    assert "task 8" not in out
    assert (hctx.worktree / "mine.txt").exists()  # the worktree itself is writable
    out = _out(await call(hctx, "run_command", {"command": "touch /etc/x /usr/x 2>&1"}))
    assert out.count("Read-only file system") == 2


@needs_sandbox
async def test_git_reads_work_and_the_workspace_cannot_be_changed(
    home: Path, call, tmp_path: Path
) -> None:
    def git(cwd: Path, *args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
        ).stdout

    repo = home / "workspace"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "s@example.com")
    git(repo, "config", "user.name", "setup")
    git(repo, "remote", "add", "origin", "https://user:ghp_canarytoken@example.com/r.git")
    (repo / "README.md").write_text("hi\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    wt = home / "worktrees" / "task-9"
    git(repo, "worktree", "add", "-q", "-b", "agentos/task-9", str(wt))
    ctx = ToolContext(kernel=None, agent="w", role="worker", task_id=9, worktree=wt)
    (wt / "new.txt").write_text("x\n")
    out = _out(await call(ctx, "run_command", {"command": "git status --short; git log --oneline"}))
    assert "?? new.txt" in out and "init" in out
    hook = repo / ".git" / "hooks" / "pre-commit"
    cmd = (
        f"cat {repo}/.git/config; echo evil > {hook}; git update-ref refs/heads/main HEAD~0 2>&1;"
        " git add -A 2>&1; echo end"
    )
    out = _out(await call(ctx, "run_command", {"command": cmd}))
    assert "ghp_canarytoken" not in out
    assert not hook.exists()
    assert "Read-only file system" in out


# ---------------------------------------------------------------- network ----


@needs_sandbox
async def test_network_is_refused_by_default_and_allowed_when_the_role_says(
    hctx: ToolContext, tcp_server: int, call
) -> None:
    code = (
        "import socket; s = socket.create_connection(('127.0.0.1', %d), timeout=3); "
        "print(s.recv(10).decode().strip())" % tcp_server
    )
    cmd = f'{sys.executable} -c "{code}" 2>&1 | tail -1'
    out = _out(await call(hctx, "run_command", {"command": cmd}))
    assert "hello" not in out and "refused" in out.lower()
    if shutil.which("curl"):
        out = _out(await call(hctx, "run_command", {"command": f"curl -sS 127.0.0.1:{tcp_server}"}))
        assert "hello" not in out
    hctx.network = True
    out = _out(await call(hctx, "run_command", {"command": cmd}))
    assert out.splitlines()[-1] == "hello"


# ----------------------------------------------------------- the opt-out ----


async def test_without_a_sandbox_the_shell_refuses_unless_the_operator_opts_out(
    hctx: ToolContext, call, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTOS_SANDBOX_BWRAP", "/nonexistent/bwrap")
    r = await call(hctx, "run_command", {"command": "echo hi"})
    assert not r.ok
    assert "run_command is disabled: no sandbox can run here" in r.output
    assert "/nonexistent/bwrap not found" in r.output and "AGENTOS_UNSAFE_NO_SANDBOX=1" in r.output
    status = sandbox_status()
    assert not status.available and not status.runs_commands
    assert "refuses to run commands" in status.describe()
    monkeypatch.setenv("AGENTOS_UNSAFE_NO_SANDBOX", "1")
    r = await call(hctx, "run_command", {"command": "echo hi"})
    assert r.ok and r.output.splitlines()[1] == "hi"
    assert "UNSANDBOXED" in sandbox_status().describe()


@needs_sandbox
def test_status_reports_the_sandbox() -> None:
    from agentos.tools.sandbox import describe

    assert STATUS.available and STATUS.mechanism.startswith("bubblewrap")
    assert describe().startswith("sandbox: bubblewrap")


# ------------------------------------------------------------ the probes ----


@needs_sandbox
def test_the_operator_probe_passes_against_an_install(tmp_path: Path) -> None:
    env = {**os.environ, "AGENTOS_HOME": str(tmp_path / "home")}
    env.pop("AGENTOS_UNSAFE_NO_SANDBOX", None)
    proc = subprocess.run(
        [sys.executable, "-m", "agentos.tools.sandbox", "probe"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("sandbox: bubblewrap")
    assert sum(line.startswith("PASS") for line in lines) == 6
    assert lines[-1] == "6 of 6 probes passed"


def test_the_probe_fails_where_commands_run_unsandboxed(tmp_path: Path) -> None:
    # The same probes against the opt-out: they must see the escapes (the probes are real).
    env = {
        **os.environ,
        "AGENTOS_HOME": str(tmp_path / "home"),
        "AGENTOS_SANDBOX_BWRAP": "/nonexistent/bwrap",
        "AGENTOS_UNSAFE_NO_SANDBOX": "1",
        "AGENTOS_PROBE_CANARY_SECRET": "canary-unsandboxed",
    }
    script = (
        "import asyncio\nfrom agentos.tools.probes import run_probes\n"
        "for r in asyncio.run(run_probes()): print(r.line())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == 6 and all(line.startswith("FAIL") for line in lines), proc.stdout


# ------------------------------------------------------- the runner's API ----


@needs_sandbox
async def test_run_sandboxed_takes_argv_extra_env_and_a_timeout(hctx: ToolContext) -> None:
    from agentos.tools.sandbox import run_sandboxed

    r = await run_sandboxed(
        ["/bin/sh", "-c", 'echo "$GREETING"; pwd'],
        worktree=hctx.worktree,
        timeout=10,
        env={"GREETING": "hi", "OPENAI_API_KEY": "passed-on-purpose"},
    )
    assert r.sandboxed and r.exit_code == 0
    assert r.output.splitlines() == ["hi", str(hctx.worktree.resolve())]
    r = await run_sandboxed("sleep 30", worktree=hctx.worktree, timeout=0.5)
    assert r.timed_out
    with pytest.raises(ValueError, match="outside the worktree"):
        await run_sandboxed("true", worktree=hctx.worktree, cwd=Path("/"), timeout=5)
    r = await asyncio.wait_for(
        run_sandboxed("cat", worktree=hctx.worktree, timeout=5, stdin_data=b"piped"), 10
    )
    assert r.output == "piped"


def _cmdlines_with(needle: str) -> list[str]:
    """Every process's command line (as `ps` shows them) that contains needle."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in text:
            found.append(text)
    return found


@needs_sandbox
async def test_the_commands_environment_is_on_no_command_line(hctx: ToolContext) -> None:
    """A value handed to a sandboxed command (an executor's provider key) reaches it
    through the environment, never through bubblewrap's argv, which any process reads."""
    from agentos.tools.sandbox import run_sandboxed

    canary = "sk-canary-7d1e0c4b9a"
    run = asyncio.create_task(
        run_sandboxed(
            ["/bin/sh", "-c", 'sleep 1.5; printf %s "$OPENAI_API_KEY" | wc -c'],
            worktree=hctx.worktree,
            timeout=20,
            env={"OPENAI_API_KEY": canary},
        )
    )
    seen: list[str] = []
    bwraps = 0
    for _ in range(20):
        await asyncio.sleep(0.05)
        seen += _cmdlines_with(canary)
        bwraps += len(_cmdlines_with("--unshare-pid"))
    r = await run
    assert r.sandboxed and r.exit_code == 0
    assert r.output.strip() == str(len(canary))  # the command had it
    assert bwraps > 0  # bubblewrap was running while we looked
    assert seen == []


async def test_a_python_environment_under_tmp_stays_visible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A virtualenv made with `mktemp -d` lives under /tmp, which the sandbox replaces
    with its own: the interpreter must still run there (the reviewer's check is
    `{python} -m pytest`). Found by tests/test_clean_install.py."""
    from agentos.tools.sandbox import run_sandboxed

    fake_env = Path("/tmp") / f"agentos-venv-probe-{os.getpid()}"
    (fake_env / "bin").mkdir(parents=True, exist_ok=True)
    try:
        (fake_env / "bin" / "marker").write_text("the venv is here\n")
        monkeypatch.setattr(sys, "prefix", str(fake_env))
        wt = tmp_path / "wt"
        wt.mkdir()
        r = await run_sandboxed(f"cat {fake_env}/bin/marker", worktree=wt, timeout=30)
        assert r.exit_code == 0 and "the venv is here" in r.output, r.output
        w = await run_sandboxed(f"touch {fake_env}/bin/x", worktree=wt, timeout=30)
        assert w.exit_code != 0 and not (fake_env / "bin" / "x").exists()  # read-only
    finally:
        shutil.rmtree(fake_env, ignore_errors=True)
