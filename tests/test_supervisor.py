"""The local supervisor: restarts crashed children with backoff, stops them cleanly with
whatever they left running, watches the embedded server, reports the demo truthfully."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from agentos.cli.supervisor import Child, Supervisor, pidfile, team
from agentos.kernel.settings import Settings


async def test_a_crashing_child_is_restarted_with_backoff(settings: Settings) -> None:
    child = Child(name="crasher", argv=[sys.executable, "-c", "import sys; sys.exit(3)"])
    sup = Supervisor(settings, children=[child])
    watcher = asyncio.create_task(sup._watch(child))
    await asyncio.sleep(3.6)  # runs at 0 s, then after 2 s (backoff doubles from 1 s), then 4 s
    sup._stop.set()
    await asyncio.wait_for(watcher, 10)
    assert 2 <= child.restarts <= 3  # backoff grows: 1 s, 2 s, 4 s


async def test_stopping_terminates_a_running_child(settings: Settings) -> None:
    child = Child(name="sleeper", argv=[sys.executable, "-c", "import time; time.sleep(60)"])
    sup = Supervisor(settings, children=[child])
    watcher = asyncio.create_task(sup._watch(child))
    await asyncio.sleep(0.5)
    assert child.proc is not None and child.proc.returncode is None
    sup._stop.set()
    await sup._terminate(child)
    await asyncio.wait_for(watcher, 10)
    assert child.proc.returncode is not None and child.restarts == 0


def test_the_team_is_one_process_hosting_every_agent_as_a_slot() -> None:
    """Issue 12: one process for the local team (it was one process per agent)."""
    kids = team(orchestrators=1, workers=2, reviewers=1, demo=True)
    assert [k.name for k in kids] == ["team"] and kids[0].env == {"AGENTOS_DEMO": "1"}
    assert kids[0].argv[-4:] == ["team", "--orchestrators=1", "--workers=2", "--reviewers=1"]


def test_process_per_role_hosts_a_roles_agents_as_slots() -> None:
    from agentos.agents.runner import default_names

    kids = team(orchestrators=1, workers=2, reviewers=1, demo=True, process_per_role=True)
    assert [k.name for k in kids] == ["orchestrator", "worker", "reviewer"]
    assert all(k.env == {"AGENTOS_DEMO": "1"} for k in kids)
    assert kids[1].argv[-6:] == ["--role", "worker", "--concurrency", "2", "--name", "worker"]
    assert default_names("worker", "worker", 2) == ["worker-1", "worker-2"]
    one = team(orchestrators=1, workers=1, reviewers=1, demo=False, process_per_role=True)
    assert one[1].argv[-2:] == ["--name", "worker-1"] and "--concurrency" not in one[1].argv


# --------------------------------------------------------------- the database --


def _embedded_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_")}
    env.update(
        AGENTOS_HOME=str(home),
        AGENTOS_POLL_INTERVAL="0.5",
        AGENTOS_LEASE_SECONDS="3",
        AGENTOS_LEADER_TTL_SECONDS="3",
        AGENTOS_LOG_LEVEL="INFO",
        **extra,
    )
    return env


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _start(home: Path, log: Path, *args: str, **extra: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "agentos.cli.main", "start", *args],
            env=_embedded_env(home, **extra),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_the_embedded_server_is_restarted_after_kill_9_and_stopped_with_agentos_start(
    tmp_path: Path,
) -> None:
    from agentos.kernel import embedded

    home, log = tmp_path / "home", tmp_path / "agentos.log"
    sup = _start(home, log, "--workers=0", "--reviewers=0", "--orchestrators=0")
    try:
        _wait(lambda: (home / "run" / "agentos.pid").exists(), 60, "agentos start")
        first = embedded.running_server(home / "pgdata")
        assert first is not None
        os.kill(first.pid, signal.SIGKILL)
        killed = time.monotonic()
        second = _wait(
            lambda: (
                (s := embedded.running_server(home / "pgdata")) is not None
                and s.pid != first.pid
                and s
            ),
            30,
            "the embedded server to come back",
        )

        def answers() -> bool:
            try:
                with psycopg.connect(second.url(), connect_timeout=5) as conn:
                    return conn.execute("SELECT 1").fetchone() is not None
            except psycopg.OperationalError:
                return False  # still starting up

        _wait(answers, 30, "SELECT 1 on the restarted server")
        print(f"embedded server back {time.monotonic() - killed:.1f} s after kill -9")
        _wait(
            lambda: "the embedded database is running again" in log.read_text(),
            30,
            "the supervisor to say it restarted the server",
        )
        sup.send_signal(signal.SIGTERM)  # what Ctrl-C and `agentos stop` do
        assert sup.wait(60) == 0
        # the README: stopping `agentos start` stops everything, the database included
        assert embedded.running_server(home / "pgdata") is None
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait(10)
        if embedded.running_server(home / "pgdata") is not None:
            embedded.stop(home / "pgdata")


async def test_keep_db_leaves_the_embedded_server_running(tmp_path: Path) -> None:
    from agentos.kernel import embedded

    settings = Settings(home=tmp_path / "home", poll_interval=0.5, lease_seconds=2.0)
    sup = Supervisor(settings, children=[], keep_db=True)
    runner = asyncio.create_task(sup.run())
    try:
        await asyncio.to_thread(
            _wait, lambda: pidfile(settings).exists(), 60, "the supervisor to come up"
        )
        sup.stop()
        assert await asyncio.wait_for(runner, 30) == 0
        assert embedded.running_server(settings.pgdata) is not None
    finally:
        embedded.stop(settings.pgdata)


# -------------------------------------------------------- leftovers of children --


HANG_TEST = """\
import os, subprocess, sys

def test_hangs_in_the_first_task():
    if os.path.basename(os.getcwd()) == "task-1":
        subprocess.run([sys.executable, "-c", "import time; time.sleep(3600)", "{mark}-tool"])
"""


def _marked(mark: str) -> list[int]:
    import psutil

    out = []
    for p in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(mark in part for part in p.info["cmdline"] or []):
                out.append(p.pid)
    return out


def test_a_hanging_check_and_a_hanging_tool_do_not_survive_agentos_stop(tmp_path: Path) -> None:
    """Task 1's worker runs tests that hang; task 2 reaches the reviewer, whose check hangs.
    Both hang in process groups of their own; `agentos stop` ends them all."""
    from agentos.kernel import embedded

    mark = f"agentos-hang-{uuid.uuid4().hex[:8]}"
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "tests").mkdir()
    (repo / "tests" / "test_hang.py").write_text(HANG_TEST.format(mark=mark))
    git_env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", *args], cwd=repo, check=True, env=git_env)
    home, log = tmp_path / "home", tmp_path / "agentos.log"
    env = {
        "AGENTOS_DEMO": "1",  # the scripted model (no demo goal: --demo would add one)
        "AGENTOS_WORKSPACE": str(repo),
        "AGENTOS_CHECK_COMMAND": f"{sys.executable} -c 'import time; time.sleep(3600)' {mark}-check",
    }
    sup = _start(home, log, "--workers=2", "--reviewers=1", "--orchestrators=0", **env)
    try:
        _wait(lambda: (home / "run" / "agentos.pid").exists(), 60, "agentos start")
        server = embedded.running_server(home / "pgdata")
        assert server is not None
        with psycopg.connect(server.url(), autocommit=True) as conn:
            for title in ("Write hanging notes", "Write checked notes"):
                conn.execute(
                    "INSERT INTO agentos.tasks (title, created_by) VALUES (%s, 'test')", (title,)
                )
        hung = _wait(
            lambda: (lambda t, c: (t, c) if t and c else None)(
                _marked(f"{mark}-tool"), _marked(f"{mark}-check")
            ),
            120,
            "the hanging tool and check: " + log.read_text()[-3000:],
        )
        r = subprocess.run(
            [sys.executable, "-m", "agentos.cli.main", "stop"],
            env=_embedded_env(home, **env),
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert r.returncode == 0, r.stderr
        assert sup.wait(30) == 0
        left = _marked(mark)
        print(f"hanging processes before stop: {hung}; after: {left}")
        assert left == [], log.read_text()[-3000:]
    finally:
        for pid in _marked(mark):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if sup.poll() is None:
            sup.kill()
            sup.wait(10)
        if embedded.running_server(home / "pgdata") is not None:
            embedded.stop(home / "pgdata")


# ------------------------------------------------------------------ the demo --


async def _demo(settings: Settings) -> tuple[int, Supervisor]:
    sup = Supervisor(settings, children=[], demo=True)
    runner = asyncio.create_task(sup.run())
    for _ in range(300):
        out = sup.demo_outcome
        if out is not None and out.message and out.status in ("done", "blocked", "failed"):
            break
        await asyncio.sleep(0.1)
    sup.stop()
    return await asyncio.wait_for(runner, 30), sup


async def _goal_with_subtasks(kernel: Any, merged: list[str | None]) -> tuple[int, list[int]]:
    from agentos.agents.demo import DEMO_GOAL as demo_goal
    from agentos.kernel import tasks

    async with kernel.connection() as conn:
        goal = await tasks.create_task(conn, title=demo_goal, role="orchestrator")
        subs = []
        for i, commit in enumerate(merged):
            sub = await tasks.create_task(conn, title=f"part {i}", parent_id=goal.id)
            if commit is not None:
                await conn.execute(
                    "UPDATE agentos.tasks SET metadata = metadata || jsonb_build_object("
                    "'merged', %s::text) WHERE id = %s",
                    (commit, sub.id),
                )
            subs.append(sub.id)
    return goal.id, subs


async def test_the_demo_reports_the_merges_it_really_made_and_exits_0(
    settings: Settings, kernel: Any
) -> None:
    from agentos.kernel import tasks

    goal, subs = await _goal_with_subtasks(kernel, ["a" * 40, "b" * 40])
    async with kernel.connection() as conn:
        for tid in [*subs, goal]:
            await tasks.transition(conn, tid, "in_progress", actor="t")
            await tasks.transition(conn, tid, "done", actor="t")
    code, sup = await _demo(settings)
    assert sup.demo_outcome is not None
    msg = sup.demo_outcome.message
    assert code == 0
    assert f"goal #{goal} is done" in msg and "2 of 2 subtasks merged" in msg, msg
    assert "a" * 12 in msg and "b" * 12 in msg


async def test_a_demo_goal_done_without_merges_does_not_say_merged(
    settings: Settings, kernel: Any
) -> None:
    from agentos.kernel import tasks

    goal, _ = await _goal_with_subtasks(kernel, [])
    async with kernel.connection() as conn:
        await tasks.transition(conn, goal, "in_progress", actor="t")
        await tasks.transition(conn, goal, "done", actor="t")
    code, sup = await _demo(settings)
    assert sup.demo_outcome is not None
    assert "no merge was recorded" in sup.demo_outcome.message
    assert "subtasks merged" not in sup.demo_outcome.message


async def test_a_blocked_demo_goal_is_reported_with_the_reason_and_exits_non_zero(
    settings: Settings, kernel: Any
) -> None:
    from agentos.kernel import tasks

    goal, subs = await _goal_with_subtasks(kernel, [None])
    async with kernel.connection() as conn:
        await tasks.transition(
            conn, subs[0], "blocked", actor="t", reason="rejected 3 times: No module named pytest"
        )
        await tasks.transition(conn, goal, "blocked", actor="t", reason="a subtask is blocked")
    code, sup = await _demo(settings)
    assert code != 0
    assert sup.demo_outcome is not None
    msg = sup.demo_outcome.message
    assert f"goal #{goal} is blocked" in msg and "a subtask is blocked" in msg, msg
    assert "No module named pytest" in msg and "0 of 1 subtasks merged" in msg, msg
    assert "is done" not in msg


async def test_stopping_before_the_demo_goal_finishes_exits_non_zero(settings: Settings) -> None:
    sup = Supervisor(settings, children=[], demo=True)
    runner = asyncio.create_task(sup.run())
    for _ in range(300):
        if sup.demo_outcome is not None:
            break
        await asyncio.sleep(0.1)
    sup.stop()
    assert await asyncio.wait_for(runner, 30) == 1
    assert sup.demo_outcome is not None and sup.demo_outcome.status == "inbox"


async def test_stopping_kills_what_a_child_started_in_its_own_process_group(
    settings: Settings,
) -> None:
    mark = f"agentos-orphan-{uuid.uuid4().hex[:8]}"
    spawn = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)', '{mark}'],"
        " start_new_session=True)\n"
        "time.sleep(3600)\n"
    )
    child = Child(name="spawner", argv=[sys.executable, "-c", spawn])
    sup = Supervisor(settings, children=[child], grace=5)
    watcher = asyncio.create_task(sup._watch(child))
    await asyncio.to_thread(_wait, lambda: _marked(mark), 30, "the grandchild")
    sup._stop.set()
    await sup._terminate(child)
    await asyncio.wait_for(watcher, 10)
    assert _marked(mark) == []


def test_stop_with_keep_db_leaves_the_embedded_server_running(tmp_path: Path) -> None:
    """`agentos stop --keep-db` (stop_supervisor(keep_db=True)): the supervisor goes, the
    database stays."""
    from agentos.cli.supervisor import stop_supervisor
    from agentos.kernel import embedded

    home, log = tmp_path / "home", tmp_path / "agentos.log"
    sup = _start(home, log, "--workers=0", "--reviewers=0", "--orchestrators=0")
    try:
        _wait(lambda: (home / "run" / "agentos.pid").exists(), 60, "agentos start")
        assert stop_supervisor(Settings(home=home), keep_db=True) == sup.pid
        assert sup.wait(30) == 0
        assert embedded.running_server(home / "pgdata") is not None
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait(10)
        embedded.stop(home / "pgdata")
