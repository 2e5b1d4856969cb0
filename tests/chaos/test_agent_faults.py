"""Agent processes killed or frozen mid-task: the work is taken over, nothing runs twice.

Real `agentos agent run` processes on the scripted model, real git worktrees, the
session's embedded PostgreSQL. AGENTOS_SCRIPTED_DELAY makes a worker wait on the model
after it has written its files and run the tests, so it is killed or frozen with
completed tool calls behind it and more to come.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

LEASE = 3.0  # AGENTOS_LEASE_SECONDS in base_env
LEADER_TTL = 3.0  # AGENTOS_LEADER_TTL_SECONDS: a dead leader's sweeps stop this long
POLL = 0.5
# a rescued task waits out its backoff (1 s after the first attempt) before a new claim
SWEEP_BOUND = LEASE + LEADER_TTL + 1.0 + 2 * POLL
SLACK = 5.0  # process scheduling on a loaded 2-core machine


def _wait_idle(c: Any, url: str, name: str) -> None:
    c.wait_until(
        url,
        "SELECT status FROM agentos.agents WHERE name = %s",
        lambda rows: bool(rows) and rows[0][0] == "idle",
        timeout=60,
        params=(name,),
    )


def _ran_tests(c: Any, url: str, task_id: int) -> None:
    c.wait_until(
        url,
        "SELECT count(*) FROM agentos.steps WHERE task_id = %s AND kind = 'tool_result' "
        "AND tool_name = 'run_command'",
        lambda rows: rows[0][0] >= 1,
        timeout=90,
        params=(task_id,),
    )


def _work_calls(c: Any, url: str, task_id: int) -> list[tuple[str, str, str]]:
    rows = c.query(
        url,
        "SELECT tool_call_id, tool_name, agent FROM agentos.steps "
        "WHERE task_id = %s AND stage = 'work' AND kind = 'tool_call' ORDER BY seq",
        (task_id,),
    )
    return [(r[0], r[1], r[2]) for r in rows]


def test_sigkill_of_a_worker_mid_task(procs, db_url: str, team_env, figure, chaos) -> None:  # type: ignore[no-untyped-def]
    doomed = procs.agent("worker", "worker-1", AGENTOS_SCRIPTED_DELAY="60")
    procs.agent("reviewer", "reviewer")
    tid = chaos.create_task(db_url, "Write crash notes")
    _ran_tests(
        chaos, db_url, tid
    )  # worker-1 wrote its files and ran the tests; it waits on the model
    procs.agent("worker", "worker-2")
    _wait_idle(chaos, db_url, "worker-2")
    killed = time.monotonic()
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(10)
    held = chaos.wait_until(
        db_url,
        "SELECT lease_agent, attempts FROM agentos.tasks WHERE id = %s",
        lambda rows: rows[0][0] == "worker-2",
        timeout=SWEEP_BOUND + SLACK + 30,
        params=(tid,),
    )
    takeover = time.monotonic() - killed
    attempts_at_takeover = held[0][1]
    chaos.wait_until(
        db_url,
        "SELECT status::text FROM agentos.tasks WHERE id = %s",
        lambda rows: rows[0][0] == "done",
        timeout=90,
        params=(tid,),
    )
    finished = time.monotonic() - killed
    calls = _work_calls(chaos, db_url, tid)
    dups = chaos.duplicate_tool_results(db_url, [tid])
    claims = chaos.query(
        db_url,
        "SELECT actor FROM agentos.activities WHERE task_id = %s AND kind = 'task.in_progress' "
        "ORDER BY id",
        (tid,),
    )
    rescues = chaos.query(
        db_url,
        "SELECT message FROM agentos.activities WHERE task_id = %s AND message LIKE 'lease of %%'",
        (tid,),
    )
    figure(
        takeover_s=takeover,
        done_after_kill_s=finished,
        bound_s=SWEEP_BOUND,
        attempts=attempts_at_takeover,
        rescues=len(rescues),
        duplicates=len(dups),
        tasks_lost=0,
    )
    assert takeover <= SWEEP_BOUND + SLACK, takeover
    assert [c[0] for c in claims] == ["worker-1", "worker-2"]
    assert attempts_at_takeover == 2  # the dead holder's claim was counted
    # one rescue, of the dead holder: no live holder's lease expired
    assert [r[0].split(" expired")[0] for r in rescues] == ["lease of worker-1"], rescues
    assert dups == []
    assert len({c[0] for c in calls}) == len(calls)  # no tool call recorded twice
    by_agent = {(name, agent) for _, name, agent in calls}
    assert {("write_file", "worker-1"), ("run_command", "worker-1")} <= by_agent
    assert ("write_file", "worker-2") not in by_agent  # completed calls were not run again
    assert ("run_command", "worker-2") not in by_agent
    assert ("git_commit", "worker-2") in by_agent


def _slow_check_roles(tmp: Path, seconds: float) -> Path:
    roles = tmp / "slow-roles"
    roles.mkdir()
    (roles / "reviewer.yaml").write_text(
        f'check_command: "sleep {seconds} && python -m pytest -q"\n'
    )
    return roles


def _lost(log: str, tid: int) -> bool:
    return bool(
        re.search(
            rf"lost its lease|task #{tid} (lost|cancelled: stopped between steps)|"
            rf"{tid}: lease lost|stale lease",
            log,
        )
    )


def test_sigstop_past_the_lease_then_sigcont(  # type: ignore[no-untyped-def]
    procs, db_url: str, team_env, figure, chaos, tmp_path: Path
) -> None:
    """A frozen worker and a frozen reviewer wake up after being replaced: their late
    writes are rejected; one commit of the work, one merge."""
    w1 = procs.agent("worker", "worker-1", AGENTOS_SCRIPTED_DELAY="8")
    r1 = procs.agent(
        "reviewer", "reviewer-1", AGENTOS_ROLES_DIR=str(_slow_check_roles(tmp_path, 6))
    )
    tid = chaos.create_task(db_url, "Write frozen notes")
    _ran_tests(chaos, db_url, tid)
    # freeze worker-1 while it waits on the model, past its lease
    os.kill(w1.pid, signal.SIGSTOP)
    ((w1_attempt,),) = chaos.query(
        db_url, "SELECT attempts FROM agentos.tasks WHERE id = %s", (tid,)
    )
    frozen = time.monotonic()
    procs.agent("worker", "worker-2")
    chaos.wait_until(
        db_url,
        "SELECT lease_agent FROM agentos.tasks WHERE id = %s",
        lambda rows: rows[0][0] == "worker-2",
        timeout=SWEEP_BOUND + SLACK + 30,
        params=(tid,),
    )
    worker_takeover = time.monotonic() - frozen
    (taken_at,) = chaos.query(db_url, "SELECT now()")[0]
    os.kill(w1.pid, signal.SIGCONT)  # its model call returns now: git_commit comes next
    # worker-2 submits; reviewer-1 claims the review and starts its 6 s check: freeze it
    chaos.wait_until(
        db_url,
        "SELECT status::text, lease_agent FROM agentos.tasks WHERE id = %s",
        lambda rows: rows[0] == ("review", "reviewer-1"),
        timeout=90,
        params=(tid,),
    )
    time.sleep(1.0)
    os.kill(r1.pid, signal.SIGSTOP)
    ((r1_attempt, r1_holds),) = chaos.query(
        db_url,
        "SELECT attempts, lease_agent = 'reviewer-1' FROM agentos.tasks WHERE id = %s",
        (tid,),
    )
    assert r1_holds, "reviewer-1 lost the review before it was frozen"
    frozen = time.monotonic()
    procs.agent("reviewer", "reviewer-2")
    chaos.wait_until(
        db_url,
        "SELECT lease_agent FROM agentos.tasks WHERE id = %s",
        lambda rows: rows[0][0] == "reviewer-2",
        timeout=SWEEP_BOUND + SLACK + 30,
        params=(tid,),
    )
    review_takeover = time.monotonic() - frozen
    chaos.wait_until(
        db_url,
        "SELECT status::text FROM agentos.tasks WHERE id = %s",
        lambda rows: rows[0][0] == "done",
        timeout=90,
        params=(tid,),
    )
    (reviewed_at,) = chaos.query(db_url, "SELECT now()")[0]
    os.kill(r1.pid, signal.SIGCONT)  # its check ends; it goes on with a lease it lost
    # give both woken holders time to try their late writes
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not (
        _lost(procs.log(w1), tid) and _lost(procs.log(r1), tid)
    ):
        time.sleep(0.3)
    time.sleep(2.0)

    repo = Path(team_env["AGENTOS_HOME"]) / "workspace"
    branch = f"agentos/task-{tid}"
    commits = [
        s
        for s in chaos.git(repo, "log", "--format=%s", branch).splitlines()
        if s.startswith(f"task #{tid}:")
    ]
    merges = [
        s
        for s in chaos.git(repo, "log", "--merges", "--format=%s", "main").splitlines()
        if s.startswith(f"Merge task #{tid}:")
    ]
    ((merged_commit,),) = chaos.query(
        db_url, "SELECT metadata->>'merged' FROM agentos.tasks WHERE id = %s", (tid,)
    )
    on_main = (
        merged_commit is not None
        and subprocess.run(
            ["git", "merge-base", "--is-ancestor", merged_commit, "main"], cwd=repo
        ).returncode
        == 0
    )
    merged_activities = chaos.query(
        db_url,
        "SELECT count(*) FROM agentos.activities WHERE task_id = %s AND kind = 'task.merged'",
        (tid,),
    )[0][0]
    late_worker_steps = chaos.query(
        db_url,
        "SELECT count(*) FROM agentos.steps WHERE task_id = %s AND agent = 'worker-1' "
        "AND stage = 'work' AND attempt = %s AND created_at > %s",
        (tid, w1_attempt, taken_at),
    )[0][0]
    late_reviewer_steps = chaos.query(
        db_url,
        "SELECT count(*) FROM agentos.steps WHERE task_id = %s AND agent = 'reviewer-1' "
        "AND stage = 'review' AND attempt = %s AND created_at > %s",
        (tid, r1_attempt, reviewed_at),
    )[0][0]
    status = chaos.query(db_url, "SELECT status::text FROM agentos.tasks WHERE id = %s", (tid,))[0][
        0
    ]
    dups = chaos.duplicate_tool_results(db_url, [tid])
    rescues = chaos.query(
        db_url,
        "SELECT message FROM agentos.activities WHERE task_id = %s AND message LIKE 'lease of %%'",
        (tid,),
    )
    figure(
        rescues=len(rescues),
        worker_takeover_s=worker_takeover,
        review_takeover_s=review_takeover,
        bound_s=SWEEP_BOUND,
        commits=len(commits),
        merges=len(merges),
        merged_activities=merged_activities,
        merge_on_main=on_main,
        late_steps_accepted=late_worker_steps + late_reviewer_steps,
        worker_1_told_lost=_lost(procs.log(w1), tid),
        reviewer_1_told_lost=_lost(procs.log(r1), tid),
        duplicates=len(dups),
    )
    assert worker_takeover <= SWEEP_BOUND + SLACK
    assert review_takeover <= SWEEP_BOUND + SLACK
    assert status == "done"
    assert len(commits) == 1, commits  # no double commit
    assert len(merges) == 1, merges  # no double merge
    assert merged_activities == 1
    assert on_main, merged_commit  # the merge the reviewer recorded is the one on main
    assert late_worker_steps == 0 and late_reviewer_steps == 0
    assert dups == []
    # exactly the two frozen holders were rescued: no live holder's lease expired
    assert [r[0].split(" expired")[0] for r in rescues] == [
        "lease of worker-1",
        "lease of reviewer-1",
    ], rescues
    assert w1.poll() is None and r1.poll() is None  # woken holders live on, they just lost
    assert _lost(procs.log(w1), tid), procs.log(w1)[-2000:]
    assert _lost(procs.log(r1), tid), procs.log(r1)[-6000:]
