"""The team end to end: real processes, real git, real PostgreSQL, the scripted model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentos.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_demo_goal_is_planned_built_reviewed_and_merged(spawn, wait_for, team_env, db_url) -> None:  # type: ignore[no-untyped-def]
    spawn("orchestrator", "orchestrator")
    spawn("worker", "worker-1")
    spawn("worker", "worker-2")
    spawn("reviewer", "reviewer")
    r = _cli(
        team_env,
        "task",
        "create",
        "Build a tiny greetings library",
        "--role",
        "orchestrator",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    goal = json.loads(r.stdout)["id"]
    wait_for(
        "SELECT status::text FROM agentos.tasks WHERE id = %s",
        lambda rows: rows[0][0] == "done",
        timeout=150,
        params=(goal,),
    )
    with psycopg.connect(db_url) as conn:
        subs = conn.execute(
            "SELECT id, title, status::text, branch, metadata FROM agentos.tasks "
            "WHERE parent_id = %s ORDER BY id",
            (goal,),
        ).fetchall()
        workers = conn.execute(
            "SELECT DISTINCT agent FROM agentos.steps WHERE stage = 'work'"
        ).fetchall()
        calls = conn.execute(
            "SELECT count(*), sum(cost_usd) FROM agentos.llm_calls WHERE outcome = 'ok'"
        ).fetchone()
    assert [s[1] for s in subs] == ["Add hello() to greetings.py", "Add goodbye() to farewells.py"]
    assert all(
        s[2] == "done" and s[3] == f"agentos/task-{s[0]}" and s[4].get("merged") for s in subs
    )
    assert {w[0] for w in workers} <= {"worker-1", "worker-2"}
    assert calls[0] > 0 and calls[1] > 0
    repo = Path(team_env["AGENTOS_HOME"]) / "workspace"
    assert (repo / "greetings.py").exists() and (repo / "farewells.py").exists()
    merges = _git(repo, "log", "--merges", "--format=%s", "main")
    assert merges.count("Merge task #") == 2
    worktrees = _git(repo, "worktree", "list")
    assert f"task-{subs[0][0]}" in worktrees and f"task-{subs[1][0]}" in worktrees
    check = subprocess.run(
        [sys.executable, "-m", "pytest", "-q"], cwd=repo, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout
    log = [
        json.loads(ln) for ln in _cli(team_env, "log", "--json", "-n", "1000").stdout.splitlines()
    ]
    kinds = [e["kind"] for e in log]
    for kind in ("task.created", "task.in_progress", "agent.step", "task.review", "task.merged",
                 "task.done"):
        assert kind in kinds, kind
    steps = [e["message"] for e in log if e["kind"] == "agent.step"]
    assert any(m.startswith("write_file(greetings.py)") for m in steps), steps
    assert any(m.startswith("approve(") for m in steps), steps
    assert kinds.count("task.merged") == 2


def test_rejected_once_then_merged(spawn, wait_for, team_env, db_url) -> None:  # type: ignore[no-untyped-def]
    spawn("worker", "worker-1")
    spawn("reviewer", "reviewer")
    r = _cli(
        team_env,
        "task",
        "create",
        "Write release notes [reject-once]",
        "--acceptance",
        "notes exist",
        "--json",
    )
    tid = json.loads(r.stdout)["id"]
    wait_for(
        "SELECT status::text FROM agentos.tasks WHERE id = %s",
        lambda rows: rows[0][0] == "done",
        timeout=120,
        params=(tid,),
    )
    with psycopg.connect(db_url) as conn:
        rejections = conn.execute(
            "SELECT rejections FROM agentos.tasks WHERE id = %s", (tid,)
        ).fetchone()[0]
        feedback = conn.execute(
            "SELECT body FROM agentos.messages WHERE task_id = %s AND kind = 'review'", (tid,)
        ).fetchall()
        rounds = conn.execute(
            "SELECT count(*) FROM agentos.steps WHERE task_id = %s AND stage = 'work' "
            "AND kind = 'user'",
            (tid,),
        ).fetchone()[0]
    assert rejections == 1
    assert feedback == [("Please add a note describing the change.",)]
    assert rounds == 2
    repo = Path(team_env["AGENTOS_HOME"]) / "workspace"
    assert any(p.name.endswith("-review.md") for p in (repo / "notes").iterdir())


def test_a_worker_killed_mid_task_is_replaced_without_repeating_tool_calls(
    spawn, wait_for, team_env, db_url
) -> None:  # type: ignore[no-untyped-def]
    doomed = spawn("worker", "worker-1", AGENTOS_SCRIPTED_DELAY="60")
    spawn("reviewer", "reviewer")
    tid = json.loads(_cli(team_env, "task", "create", "Write crash notes", "--json").stdout)["id"]
    # worker-1 wrote its files and ran the tests, then hangs waiting on the model
    wait_for(
        "SELECT count(*) FROM agentos.steps WHERE task_id = %s AND kind = 'tool_result' "
        "AND tool_name = 'run_command'",
        lambda rows: rows[0][0] == 1,
        timeout=60,
        params=(tid,),
    )
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(10)
    spawn("worker", "worker-2")
    wait_for(
        "SELECT status::text FROM agentos.tasks WHERE id = %s",
        lambda rows: rows[0][0] == "done",
        timeout=120,
        params=(tid,),
    )
    with psycopg.connect(db_url) as conn:
        calls = conn.execute(
            "SELECT tool_call_id, tool_name, agent FROM agentos.steps "
            "WHERE task_id = %s AND stage = 'work' AND kind = 'tool_call'",
            (tid,),
        ).fetchall()
        results = conn.execute(
            "SELECT tool_call_id, count(*) FROM agentos.steps WHERE task_id = %s "
            "AND stage = 'work' AND kind = 'tool_result' GROUP BY 1",
            (tid,),
        ).fetchall()
        claims = conn.execute(
            "SELECT actor FROM agentos.activities WHERE task_id = %s "
            "AND kind = 'task.in_progress' ORDER BY id",
            (tid,),
        ).fetchall()
    assert [c[0] for c in claims] == ["worker-1", "worker-2"]
    assert all(n == 1 for _, n in results), results
    assert len({c[0] for c in calls}) == len(calls)  # no tool call recorded (or run) twice
    by_agent = {(name, agent) for _, name, agent in calls}
    assert ("write_file", "worker-1") in by_agent and ("run_command", "worker-1") in by_agent
    assert ("write_file", "worker-2") not in by_agent and (
        "run_command",
        "worker-2",
    ) not in by_agent
    assert ("git_commit", "worker-2") in by_agent


def test_agent_run_serves_health_probes_and_releases_on_sigterm(
    spawn, wait_for, team_env, db_url
) -> None:  # type: ignore[no-untyped-def]
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = spawn("worker", "probe-1", AGENTOS_HEALTH_PORT=str(port))
    deadline = time.monotonic() + 60
    codes: dict[str, int] = {}
    while time.monotonic() < deadline and codes.get("readyz") != 200:
        try:
            for path in ("readyz", "livez"):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=2) as r:
                    codes[path] = r.status
        except OSError:
            time.sleep(0.2)
    assert codes == {"readyz": 200, "livez": 200}
    wait_for(
        "SELECT status FROM agentos.agents WHERE name = 'probe-1'",
        lambda rows: rows and rows[0][0] == "idle",
        timeout=30,
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    wait_for(
        "SELECT status FROM agentos.agents WHERE name = 'probe-1'",
        lambda rows: rows[0][0] == "offline",
        timeout=10,
    )


async def test_the_leading_orchestrator_scales_workers_from_queue_depth(kernel) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import uuid

    from agentos.agents.runner import _scale
    from agentos.kernel import tasks
    from agentos.kernel.leader import Leadership

    calls: list[tuple[int, int, bool]] = []

    class Recorder:
        def reconcile(self, queue_depth: int, busy: int, is_leader: bool) -> int | None:
            calls.append((queue_depth, busy, is_leader))
            return None

    async with kernel.connection() as conn:
        for i in range(3):
            await tasks.create_task(conn, title=f"queued {i}")
    lead = Leadership(kernel, "orchestrator", uuid.uuid4(), ttl=5)
    assert await lead.tick()
    stop = asyncio.Event()
    runner = asyncio.create_task(_scale(kernel, Recorder(), lead, stop, "worker", every=0.1))
    await asyncio.sleep(0.35)
    stop.set()
    await runner
    assert calls and calls[0] == (3, 0, True)


def test_pods_with_separate_disks_share_work_through_a_git_remote(spawn, wait_for, team_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Worker and reviewer on different AGENTOS_HOMEs (as pods), one bare remote."""
    remote = tmp_path / "origin.git"
    seed = tmp_path / "seed"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(seed)], check=True)
    (seed / "README.md").write_text("# shared\n")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": os.environ["PATH"]}
    for args in (["add", "-A"], ["commit", "-qm", "init"], ["push", "-q", str(remote), "main"]):
        subprocess.run(["git", *args], cwd=seed, check=True, env=env)
    shared = {"AGENTOS_WORKSPACE_REMOTE": str(remote)}
    spawn("worker", "pod-worker", AGENTOS_HOME=str(tmp_path / "pod-w"), **shared)
    spawn("reviewer", "pod-reviewer", AGENTOS_HOME=str(tmp_path / "pod-r"), **shared)
    tid = json.loads(_cli(team_env, "task", "create", "Write shared notes", "--json").stdout)["id"]
    wait_for("SELECT status::text FROM agentos.tasks WHERE id = %s", lambda rows: rows[0][0] == "done",
             timeout=120, params=(tid,))
    log = _git(remote, "log", "--format=%s", "main")
    assert f"Merge task #{tid}: Write shared notes" in log
    files = _git(remote, "ls-tree", "-r", "--name-only", "main")
    assert f"notes/task-{tid}-write-shared-notes.md" in files


def test_task_show_prints_cost_and_the_transcript(spawn, wait_for, team_env) -> None:  # type: ignore[no-untyped-def]
    spawn("worker", "worker-1")
    tid = json.loads(_cli(team_env, "task", "create", "Write show notes", "--json").stdout)["id"]
    wait_for("SELECT status::text FROM agentos.tasks WHERE id = %s",
             lambda rows: rows[0][0] == "review", timeout=60, params=(tid,))
    r = _cli(team_env, "task", "show", str(tid), "--steps")
    assert r.returncode == 0, r.stderr
    assert "llm: 4 calls" in r.stdout
    assert "tool_call   write_file" in r.stdout and "run_command ok" in r.stdout
    body = json.loads(_cli(team_env, "task", "show", str(tid), "--json").stdout)
    assert body["cost"]["calls"] == 4 and body["steps"] > 10
