"""PostgreSQL restarted under load: `agentos start` on its own embedded server, three
goals in flight, the server restarted with `pg_ctl restart -m fast` or killed with
SIGKILL of the postmaster (the supervisor starts it again). Every process must
reconnect by itself and finish the work: nothing lost, nothing stuck, nothing twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

LEASE = 6.0  # a blip of a second or two is well within one lease
POLL = 0.5


def _server(pgdata: Path, timeout: float = 60) -> object:
    from agentos.kernel import embedded

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        server = embedded.running_server(pgdata)
        if server is not None:
            return server
        time.sleep(0.2)
    raise AssertionError(f"no embedded server on {pgdata}")


@pytest.mark.parametrize("how", ["pg_ctl-restart-fast", "sigkill-postmaster"])
def test_postgres_restarted_under_load(how: str, tmp_path: Path, chaos, figure) -> None:  # type: ignore[no-untyped-def]
    from agentos.kernel import embedded

    home = tmp_path / "home"
    env = chaos.base_env(
        home,
        AGENTOS_LEASE_SECONDS=str(LEASE),
        AGENTOS_POLL_INTERVAL=str(POLL),
        AGENTOS_SCRIPTED_DELAY="2",  # workers wait on the model: work stays in flight
    )
    procs = chaos.Procs(env, tmp_path)
    sup = procs.start(["start", "--workers=3", "--reviewers=1", "--orchestrators=1"], "agentos")
    try:
        server = _server(home / "pgdata")
        url = server.url()  # type: ignore[attr-defined]
        chaos.wait_until(
            url,
            "SELECT count(*) FROM agentos.agents WHERE status = 'idle'",
            lambda rows: rows[0][0] == 5,
            timeout=90,
        )
        goals = [
            chaos.create_task(url, f"Write restart notes {c}", role="orchestrator") for c in "ABC"
        ]
        # in flight: the three subtasks exist and at least two workers are mid-task
        chaos.wait_until(
            url,
            "SELECT count(*) FILTER (WHERE lease_token IS NOT NULL), count(*) "
            "FROM agentos.tasks WHERE parent_id = ANY(%s)",
            lambda rows: rows[0][1] == 3 and rows[0][0] >= 2,
            timeout=60,
            params=(goals,),
        )
        (blip_at,) = chaos.query(url, "SELECT now()")[0]
        started = time.monotonic()
        if how == "pg_ctl-restart-fast":
            embedded.restart(home / "pgdata")
        else:
            os.kill(server.pid, signal.SIGKILL)  # type: ignore[attr-defined]
            time.sleep(0.5)
        chaos.wait_until(url, "SELECT 1", lambda rows: True, timeout=60, every=0.05)
        down = time.monotonic() - started
        # work flows again: an agent records a step after the blip
        chaos.wait_until(
            url,
            "SELECT count(*) FROM agentos.steps WHERE created_at > %s",
            lambda rows: rows[0][0] > 0,
            timeout=60,
            params=(blip_at,),
            every=0.05,
        )
        flowing = time.monotonic() - started
        chaos.wait_until(
            url,
            "SELECT count(*) FROM agentos.tasks WHERE id = ANY(%s) "
            "AND status IN ('done', 'blocked', 'failed', 'cancelled')",
            lambda rows: rows[0][0] == 3,
            timeout=150,
            params=(goals,),
        )
        finished = time.monotonic() - started
        # every process still serves: a new task is claimed (dispatcher, listener, pool)
        probe = chaos.create_task(url, "Write after-restart notes")
        chaos.wait_until(
            url,
            "SELECT started_at FROM agentos.tasks WHERE id = %s",
            lambda rows: rows[0][0] is not None,
            timeout=30,
            params=(probe,),
        )
        goal_states = chaos.query(
            url,
            "SELECT id, status::text, error FROM agentos.tasks WHERE id = ANY(%s) ORDER BY id",
            (goals,),
        )
        subs = chaos.query(
            url,
            "SELECT id, status::text, metadata ? 'merged', metadata->>'merged', error "
            "FROM agentos.tasks WHERE parent_id = ANY(%s) ORDER BY id",
            (goals,),
        )
        bad = chaos.query(
            url,
            "SELECT id, status::text, error FROM agentos.tasks "
            "WHERE status IN ('failed', 'blocked') OR (id <> %s AND lease_token IS NOT NULL)",
            (probe,),
        )
        rescues = chaos.query(
            url,
            "SELECT task_id, message FROM agentos.activities WHERE message LIKE 'lease of %%'",
        )
        stale_sessions = chaos.query(
            url,
            "SELECT role, pid FROM agentos.agent_sessions WHERE status = 'running' "
            "AND heartbeat_at < %s",
            (blip_at,),
        )
        merged_activities = chaos.query(
            url, "SELECT count(*) FROM agentos.activities WHERE kind = 'task.merged'"
        )[0][0]
        dups = chaos.duplicate_tool_results(url)
        repo = home / "workspace"
        merges = [
            s
            for s in chaos.git(repo, "log", "--merges", "--format=%s", "main").splitlines()
            if s.startswith("Merge task #")
        ]
        # every merge the reviewer recorded is on main (none was undone afterwards)
        not_on_main = [
            (s[0], s[3])
            for s in subs
            if s[3]
            and subprocess.run(
                ["git", "merge-base", "--is-ancestor", s[3], "main"], cwd=repo
            ).returncode
            != 0
        ]
        log = (tmp_path / "agentos.log").read_text(errors="replace")
        restarted_children = log.count("; restarting in ")
        figure(
            how=how,
            down_s=down,
            work_flows_after_s=flowing,
            goals_done_after_s=finished,
            rescues=len(rescues),
            tasks_lost=3 - sum(1 for s in subs if s[1] == "done"),
            stuck=len(bad),
            duplicates=len(dups),
            merges=len(merges),
            merges_not_on_main=len(not_on_main),
            db_restarts_by_supervisor=log.count("the embedded database is running again"),
            agent_processes_restarted=restarted_children,
        )
        assert [g[1] for g in goal_states] == ["done", "done", "done"], (goal_states, subs)
        assert [s[1] for s in subs] == ["done", "done", "done"], subs
        assert not_on_main == [], not_on_main
        assert all(s[2] for s in subs), subs  # each merged
        assert len(merges) == 3 and merged_activities == 3, (merges, merged_activities)
        assert bad == [], bad
        assert dups == []
        assert stale_sessions == [], stale_sessions  # every process heartbeats again
        assert restarted_children == 0, "an agent process died instead of reconnecting"
        # the blip is shorter than a lease: in-flight work survives it, no attempt spent
        assert rescues == [], rescues
        if how == "sigkill-postmaster":
            assert "the embedded database is running again" in log
        assert sup.poll() is None
    finally:
        procs.stop_all()
        left_running = embedded.running_server(home / "pgdata")
        if left_running is not None:
            embedded.stop(home / "pgdata")
    assert sup.returncode == 0
    assert left_running is None  # stopping `agentos start` stopped its embedded server
