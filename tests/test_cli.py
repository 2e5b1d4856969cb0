"""The real `agentos` CLI in subprocesses, including bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psycopg


def test_task_lifecycle_through_the_cli(run_cli) -> None:  # type: ignore[no-untyped-def]
    r = run_cli(
        "task",
        "create",
        "Write the README",
        "--description",
        "for newcomers",
        "--acceptance",
        "has two commands",
        "--priority",
        "5",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    first = json.loads(r.stdout)
    assert first["id"] >= 1 and first["status"] == "inbox" and first["priority"] == 5
    r = run_cli(
        "task",
        "create",
        "Then this",
        "--depends-on",
        str(first["id"]),
        "--parent",
        str(first["id"]),
        "--role",
        "reviewer",
        "--json",
    )
    second = json.loads(r.stdout)
    assert second["depends_on"] == [first["id"]] and second["parent_id"] == first["id"]
    listed = json.loads(run_cli("task", "list", "--json").stdout)
    assert [t["id"] for t in listed] == [first["id"], second["id"]]
    assert (
        json.loads(run_cli("task", "list", "--role", "reviewer", "--json").stdout)[0]["id"]
        == second["id"]
    )
    shown = run_cli("task", "show", str(first["id"]))
    assert "Write the README" in shown.stdout and "acceptance: has two commands" in shown.stdout
    r = run_cli("task", "cancel", str(first["id"]))
    assert r.returncode == 0 and "cancelled" in r.stdout
    r = run_cli("task", "retry", str(first["id"]), "--json")
    assert json.loads(r.stdout)["status"] == "inbox"
    log = [
        json.loads(ln)
        for ln in run_cli("log", "--json", "--task", str(first["id"])).stdout.splitlines()
    ]
    assert [e["kind"] for e in log] == ["task.created", "task.cancelled", "task.inbox"]
    plain = run_cli("log", "-n", "2")
    assert plain.returncode == 0 and len(plain.stdout.splitlines()) == 2


def test_bad_input_is_one_line_and_changes_nothing(run_cli, db_url) -> None:  # type: ignore[no-untyped-def]
    cases = [
        (("task", "create", ""), 2, "title"),
        (("task", "create", "   "), 2, "title"),
        (("task", "create", "x", "--priority", "high"), 2, "priority"),
        (("task", "create", "x", "--depends-on", "999"), 2, "no task 999"),
        (("task", "create", "x", "--assign", "ghost"), 2, "no agent 'ghost'"),
        (("task", "create", "x", "--role", "Bad Role"), 2, "bad role name"),
        (("task", "create", "x", "--parent", "0"), 2, "parent"),
        (("task", "show", "999"), 3, "no task 999"),
        (("task", "show", "abc"), 2, "abc"),
        (("task", "cancel", "999"), 3, "no task 999"),
        (("task", "retry", "999"), 3, "no task 999"),
        (("task", "list", "--status", "sideways"), 2, "sideways"),
        (("task", "frobnicate"), 2, "frobnicate"),
        (("schedule", "add", "x", "not a cron", "--role", "worker"), 2, "bad cron"),
        (("schedule", "add", "x", "0 0 31 2 *", "--role", "worker"), 2, "never fires"),
        (("schedule", "remove", "nope"), 3, "no schedule"),
        (("task", "create", "x", "--role", "workr"), 2, "unknown role 'workr'"),
        (("task", "retry", "1", "--budget", "nan"), 2, "finite"),
        (("task", "show", str(2**63)), 2, "9223372036854775807"),
    ]
    for args, code, needle in cases:
        r = run_cli(*args)
        assert r.returncode == code, (args, r.returncode, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr, (args, r.stderr)
        assert needle in r.stderr, (args, r.stderr)
        # usage errors too: one `error: ...` line, with the command's --help named in it
        assert r.stderr.startswith("error: ") and len(r.stderr.splitlines()) == 1, (args, r.stderr)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM agentos.tasks").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM agentos.schedules").fetchone()[0] == 0


def test_retry_and_cancel_refuse_impossible_moves(run_cli) -> None:  # type: ignore[no-untyped-def]
    tid = json.loads(run_cli("task", "create", "x", "--json").stdout)["id"]
    r = run_cli("task", "retry", str(tid))
    assert r.returncode == 2 and "only failed, blocked or cancelled" in r.stderr
    assert run_cli("task", "cancel", str(tid)).returncode == 0
    r = run_cli("task", "cancel", str(tid))
    assert r.returncode == 2 and "already cancelled" in r.stderr


def test_schedule_commands(run_cli) -> None:  # type: ignore[no-untyped-def]
    r = run_cli(
        "schedule",
        "add",
        "orchestrator-beat",
        "*/5 * * * *",
        "--role",
        "orchestrator",
        "--precondition",
        "EXISTS (SELECT 1 FROM agentos.tasks WHERE status = 'failed')",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["cron"] == "*/5 * * * *"
    assert (
        run_cli("schedule", "add", "orchestrator-beat", "* * * * *", "--role", "x").returncode == 2
    )
    listed = json.loads(run_cli("schedule", "list", "--json").stdout)
    assert [s["name"] for s in listed] == ["orchestrator-beat"]
    assert "orchestrator-beat" in run_cli("schedule", "list").stdout
    assert run_cli("schedule", "remove", "orchestrator-beat").returncode == 0
    assert json.loads(run_cli("schedule", "list", "--json").stdout) == []


def test_agent_list_and_status(run_cli) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("agent", "list", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"agents": [], "sessions": []}
    st = run_cli("status", "--json")
    assert st.returncode == 0
    body = json.loads(st.stdout)
    assert body["running"] is False and body["database_up"] is True and body["schema"]["ok"]


def test_db_url_and_psql(run_cli, db_url) -> None:  # type: ignore[no-untyped-def]
    assert run_cli("db", "url").stdout.strip() == db_url
    run_cli("task", "create", "seen from psql")
    r = run_cli("db", "psql", "-At", "-c", "SELECT title FROM board")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "seen from psql"


def test_log_follow_streams_new_rows(cli_env, run_cli) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentos.cli.main", "log", "--follow", "--json"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        run_cli("task", "create", "followed")
        assert proc.stdout is not None
        line = proc.stdout.readline()
        row = json.loads(line)
        assert row["kind"] == "task.created" and row["message"] == "followed"
    finally:
        proc.terminate()
        proc.wait(10)


def test_start_detach_status_stop(cli_env, run_cli) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("start", "--detach", timeout=90)
    assert r.returncode == 0, r.stderr
    try:
        st = json.loads(run_cli("status", "--json").stdout)
        assert st["running"] is True
        again = run_cli("start", "--detach")
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        r = run_cli("stop")
    assert r.returncode == 0 and "stopped agentos" in r.stdout
    assert json.loads(run_cli("status", "--json").stdout)["running"] is False


def test_skills_and_messages_through_the_cli(run_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    doc = tmp_path / "review.md"
    doc.write_text("# How we review\n\nRun the tests first.\n")
    r = run_cli("skill", "add", "reviewing", str(doc), "-d", "how we review")
    assert r.returncode == 0, r.stderr
    assert "reviewing" in run_cli("skill", "list").stdout
    assert "Run the tests first." in run_cli("skill", "show", "reviewing").stdout
    assert run_cli("skill", "add", "reviewing", str(doc)).returncode == 2
    assert run_cli("skill", "show", "nope").returncode == 3
    tid = json.loads(run_cli("task", "create", "talk about me", "--json").stdout)["id"]
    r = run_cli("message", "send", "please hurry", "--task", str(tid), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["task_id"] == tid
    assert run_cli("message", "send", "hello").returncode == 2
    r = run_cli("message", "send", "hello", "--to", "ghost")
    assert r.returncode == 2 and "ghost" in r.stderr


def test_bench_commands_print_figures_with_their_baselines(run_cli) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("bench", "dispatch", "--tasks", "100", "--concurrency", "2", "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for p in (1, 2):
        assert d[f"pgqueuer_{p}p"] > 0 and d[f"kernel_{p}p"] > 0
        assert abs(d[f"ratio_{p}p"] - d[f"kernel_{p}p"] / d[f"pgqueuer_{p}p"]) < 0.01
    r = run_cli("bench", "wake", "--tasks", "20", "--killed-samples", "2", "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    w = json.loads(r.stdout)
    assert 0 < w["notify"]["p50"] <= w["notify"]["p99"]
    assert 0 < w["wake"]["p50"] <= w["wake"]["p99"]
    assert w["deaf"]["max"] <= w["poll_interval_s"] * 1000 + 1000
