"""Fixtures for executor tests: the real CLIs, real agent processes, fake model servers.

The CLIs are installed outside the repository (`.ci/run` puts them in
AGENTOS_TEST_TOOLS_DIR, default /opt/agentos-test-tools: npm packages under node_modules/.bin,
aider in its own venv under aider/bin). A test whose CLI is missing is skipped with
the path it looked at.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from fakes import FakeModel

TOOLS = Path(os.environ.get("AGENTOS_TEST_TOOLS_DIR", "/opt/agentos-test-tools"))
CANARY = "sk-canary-" + uuid.uuid4().hex
BINARIES = {
    "claude-code": TOOLS / "node_modules" / ".bin" / "claude",
    "codex": TOOLS / "node_modules" / ".bin" / "codex",
    "opencode": TOOLS / "node_modules" / ".bin" / "opencode",
    "gemini-cli": TOOLS / "node_modules" / ".bin" / "gemini",
    "aider": TOOLS / "aider" / "bin" / "aider",
}


def cli_binary(executor: str) -> str:
    """The installed CLI for an executor, or skip the test."""
    path = BINARIES[executor]
    if not os.access(path, os.X_OK):
        pytest.skip(f"{executor} is not installed at {path} (set AGENTOS_TEST_TOOLS_DIR)")
    return str(path)


@pytest.fixture
def fake() -> Iterator[Callable[[str], FakeModel]]:
    """Start fake model servers: fake('anthropic') -> a running FakeModel."""
    started: list[FakeModel] = []

    def start(api: str, **kw: Any) -> FakeModel:
        f = FakeModel(api, **kw).start()
        started.append(f)
        return f

    yield start
    for f in started:
        f.stop()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def exec_env(db_url: str, home: Path) -> dict[str, str]:
    """An agent process environment: this test's database, the scripted reviewer."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGENTOS_", "ANTHROPIC_", "OPENAI_", "GEMINI_", "GOOGLE_"))
    }
    env.update(
        AGENTOS_DATABASE_URL=db_url,
        AGENTOS_HOME=str(home),
        AGENTOS_DEMO="1",
        AGENTOS_POLL_INTERVAL="0.5",
        AGENTOS_LEASE_SECONDS="3",
        AGENTOS_LEADER_TTL_SECONDS="3",
        AGENTOS_LOG_LEVEL="INFO",
        AGENTOS_CHECK_COMMAND="true",
    )
    return env


def write_role(home: Path, executor: str, **options: Any) -> None:
    """AGENTOS_HOME/roles/worker.yaml: the worker runs this executor."""
    roles = home / "roles"
    roles.mkdir(parents=True, exist_ok=True)
    (roles / "worker.yaml").write_text(
        yaml.safe_dump({"executor": executor, "executor_options": options})
    )


@pytest.fixture
def agents(
    exec_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start `agentos agent run` processes; all are stopped at the end."""
    procs: list[subprocess.Popen[str]] = []

    def start(role: str, name: str, **extra_env: str) -> subprocess.Popen[str]:
        log = open(tmp_path / f"{name}.log", "a")
        p = subprocess.Popen(
            [sys.executable, "-m", "agentos.cli.main", "agent", "run", "--role", role,
             "--name", name],
            env={**exec_env, **extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
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


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real agentos CLI."""
    return subprocess.run(
        [sys.executable, "-m", "agentos.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def query(db_url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()


def wait_until(check: Callable[[], Any], timeout: float = 90, what: str = "") -> Any:
    """Poll check() until it returns something truthy."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or check}; last: {last!r}")


def processes_with(token: str) -> list[tuple[int, str]]:
    """Processes whose command line contains token (pid, command line)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            raw = (d / "cmdline").read_bytes()
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            continue
        cmd = raw.replace(b"\0", b" ").decode(errors="replace")
        if token in cmd and str(os.getpid()) != d.name:
            out.append((int(d.name), cmd[:200]))
    return out


def task_status(db_url: str, task_id: int) -> str:
    return str(
        query(db_url, "SELECT status::text FROM agentos.tasks WHERE id = %s", (task_id,))[0][0]
    )


def no_canary(db_url: str) -> None:
    """The provider key is nowhere in the database."""
    for table in ("steps", "activities", "llm_calls", "tasks", "messages", "task_transitions"):
        rows = query(db_url, f"SELECT count(*) FROM agentos.{table} t WHERE t::text LIKE %s",
                     (f"%{CANARY}%",))  # fmt: skip
        assert rows[0][0] == 0, f"the canary key leaked into agentos.{table}"


def create_task(env: dict[str, str], title: str) -> int:
    """`agentos task create TITLE --role worker`; its id."""
    import json

    r = cli(env, "task", "create", title, "--role", "worker", "--json", "-a", "hello.txt exists")
    assert r.returncode == 0, r.stderr
    return int(json.loads(r.stdout)["id"])


def git_in(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
