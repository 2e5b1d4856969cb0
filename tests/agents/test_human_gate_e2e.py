"""The human gate end to end: real agent processes (scripted model), real git, the CLI in
subprocesses. A held merge waits in `approval` until `agentos task approve`; `task
reject` sends it back with the feedback in the worker's next prompt; tiers let small
changes through; a budget breach waits for `task approve --budget`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def roles(tmp_path: Path) -> Path:
    d = tmp_path / "roles"
    d.mkdir()
    return d


@pytest.fixture
def cli(team_env: dict[str, str], roles: Path) -> Any:
    env = {**team_env, "AGENTOS_ROLES_DIR": str(roles), "USER": "alice"}

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agentos.cli.main", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return call


def _status(wait_for: Any, tid: int, want: str, timeout: float = 150) -> None:
    wait_for(
        "SELECT status::text FROM agentos.tasks WHERE id = %s",
        lambda rows: rows[0][0] == want,
        timeout=timeout,
        params=(tid,),
    )


def _create(cli: Any, title: str, *extra: str) -> int:
    r = cli("task", "create", title, "--json", *extra)
    assert r.returncode == 0, r.stderr
    return int(json.loads(r.stdout)["id"])


def test_merge_human_holds_the_merge_until_approve_and_reject_sends_it_back(
    spawn: Any, wait_for: Any, cli: Any, roles: Path, team_env: dict[str, str], db_url: str
) -> None:
    (roles / "reviewer.yaml").write_text("merge: human\n")
    extra = {"AGENTOS_ROLES_DIR": str(roles)}
    spawn("worker", "worker-1", **extra)
    spawn("reviewer", "reviewer", **extra)
    tid = _create(cli, "Write the gate notes")
    _status(wait_for, tid, "approval")
    repo = Path(team_env["AGENTOS_HOME"]) / "workspace"
    assert f"Merge task #{tid}" not in _git(repo, "log", "--format=%s", "main")
    assert _git(repo, "branch", "--list", f"agentos/task-{tid}").strip()

    listed = cli("task", "list")
    assert listed.returncode == 0
    assert f"#{tid:<5} approval" in listed.stdout
    assert "1 waiting for you:" in listed.stdout and f"agentos task approve {tid}" in listed.stdout
    shown = cli("task", "show", str(tid))
    assert "waits for a person: the reviewer role merges with a person's approval" in shown.stdout
    assert "approved by reviewer: Acceptance criteria met" in shown.stdout
    assert "changes: 1 file, +3 -0" in shown.stdout

    # sent back: the feedback is in the worker's next prompt, and it comes back to approval
    feedback = "Add a line saying who approved it."
    r = cli("task", "reject", str(tid), "--feedback", feedback)
    assert r.returncode == 0, r.stderr
    assert f"task #{tid} is now assigned (worker-1)" in r.stdout
    wait_for(
        "SELECT count(*) FROM agentos.tasks WHERE id = %s AND status = 'approval' "
        "AND rejections = 1",
        lambda rows: rows[0][0] == 1,
        timeout=150,
        params=(tid,),
    )
    with psycopg.connect(db_url) as conn:
        prompts = [
            r[0]
            for r in conn.execute(
                "SELECT content->>'text' FROM agentos.steps WHERE task_id = %s "
                "AND stage = 'work' AND kind = 'user' ORDER BY seq",
                (tid,),
            )
        ]
        msg = conn.execute(
            "SELECT from_agent, to_agent, kind FROM agentos.messages WHERE task_id = %s",
            (tid,),
        ).fetchall()
    assert len(prompts) == 2 and feedback not in prompts[0] and feedback in prompts[1]
    assert "sent this task back" in prompts[1]
    assert msg == [("alice", "worker-1", "review")]
    assert f"Merge task #{tid}" not in _git(repo, "log", "--format=%s", "main")

    r = cli("task", "approve", str(tid))
    assert r.returncode == 0, r.stderr
    assert f"task #{tid} is now done: merged into main" in r.stdout
    assert f"Merge task #{tid}" in _git(repo, "log", "--format=%s", "main")
    assert (repo / "notes" / f"task-{tid}-review.md").exists()  # the work after the feedback
    with psycopg.connect(db_url) as conn:
        merged = conn.execute(
            "SELECT actor, data->>'commit' FROM agentos.activities WHERE task_id = %s "
            "AND kind = 'task.merged'",
            (tid,),
        ).fetchall()
        meta = conn.execute("SELECT metadata FROM agentos.tasks WHERE id = %s", (tid,)).fetchone()
    head = _git(repo, "rev-parse", "main").strip()
    assert merged == [("alice", head)]
    assert meta is not None and meta[0]["merged"] == head
    assert meta[0]["approval"]["decision"]["by"] == "alice"

    again = cli("task", "approve", str(tid))
    assert again.returncode == 2 and again.stderr.startswith("error: task")
    assert "not waiting for approval" in again.stderr and len(again.stderr.splitlines()) == 1
    missing = cli("task", "reject", "999999", "--feedback", "x")
    assert missing.returncode == 3 and missing.stderr.strip() == "error: no task 999999"


def test_auto_merge_tiers_let_a_small_change_through_and_hold_a_big_one(
    spawn: Any, wait_for: Any, cli: Any, roles: Path, team_env: dict[str, str]
) -> None:
    (roles / "reviewer.yaml").write_text("merge: auto\nauto_merge_max_lines: 5\n")
    extra = {"AGENTOS_ROLES_DIR": str(roles)}
    spawn("worker", "worker-1", **extra)
    spawn("reviewer", "reviewer", **extra)
    small = _create(cli, "Write small notes")  # 3 lines
    big = _create(cli, "Add hello() to greetings.py")  # 7 lines
    small_but_asked = _create(cli, "Write asked notes", "--approval", "human")
    _status(wait_for, small, "done")
    _status(wait_for, big, "approval")
    _status(wait_for, small_but_asked, "approval")
    shown = cli("task", "show", str(big))
    assert "7 lines changed; merge: auto allows at most 5 (auto_merge_max_lines)" in shown.stdout
    assert "changes: 2 files, +7 -0" in shown.stdout
    asked = cli("task", "show", str(small_but_asked))
    assert "the task asks for a person's approval (approval: human)" in asked.stdout
    repo = Path(team_env["AGENTOS_HOME"]) / "workspace"
    merges = _git(repo, "log", "--format=%s", "main")
    assert f"Merge task #{small}" in merges and f"Merge task #{big}" not in merges
    assert cli("task", "approve", str(big)).returncode == 0
    assert f"Merge task #{big}" in _git(repo, "log", "--format=%s", "main")
    assert (repo / "greetings.py").exists()


def test_a_budget_breach_waits_for_approve_with_a_new_budget(
    spawn: Any, wait_for: Any, cli: Any, roles: Path
) -> None:
    (roles / "worker.yaml").write_text("limits: {task_budget_usd: 0.01, call_estimate_usd: 0.02}\n")
    extra = {"AGENTOS_ROLES_DIR": str(roles)}
    spawn("worker", "worker-1", **extra)
    spawn("reviewer", "reviewer", **extra)
    tid = _create(cli, "Write pricey notes")
    _status(wait_for, tid, "blocked")
    listed = cli("task", "list")
    assert f"agentos task approve {tid} --budget USD" in listed.stdout
    refused = cli("task", "approve", str(tid))
    assert refused.returncode == 2 and "blocked on its budget" in refused.stderr
    r = cli("task", "approve", str(tid), "--budget", "5")
    assert r.returncode == 0, r.stderr
    assert "with a budget of $5" in r.stdout
    _status(wait_for, tid, "done")


def test_a_goal_created_for_approval_holds_its_subtasks_and_approving_them_finishes_it(
    spawn: Any, wait_for: Any, cli: Any, team_env: dict[str, str], db_url: str
) -> None:
    """--approval human on a goal: its subtasks inherit it, each merge waits, and
    approving them wakes the goal, which the orchestrator then completes."""
    spawn("orchestrator", "orchestrator")
    spawn("worker", "worker-1")
    spawn("reviewer", "reviewer")
    goal = _create(
        cli, "Build a tiny greetings library", "--role", "orchestrator", "--approval", "human"
    )
    wait_for(
        "SELECT count(*) FROM agentos.tasks WHERE parent_id = %s AND status = 'approval'",
        lambda rows: rows[0][0] == 2,
        timeout=180,
        params=(goal,),
    )
    with psycopg.connect(db_url) as conn:
        subs = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM agentos.tasks WHERE parent_id = %s AND approval = 'human' "
                "ORDER BY id",
                (goal,),
            )
        ]
        status = conn.execute("SELECT status::text FROM agentos.tasks WHERE id = %s", (goal,))
        assert status.fetchone() != ("done",)
    assert len(subs) == 2
    for sub in subs:
        r = cli("task", "approve", str(sub))
        assert r.returncode == 0, r.stderr
    _status(wait_for, goal, "done", timeout=120)
    repo = Path(team_env["AGENTOS_HOME"]) / "workspace"
    merges = _git(repo, "log", "--merges", "--format=%s", "main")
    assert all(f"Merge task #{sub}" in merges for sub in subs)
