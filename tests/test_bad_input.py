"""Bad input changes nothing (issue 8, part 6).

Every probe runs the real CLI in a subprocess and then looks at the database: one
`error: ...` line on stderr, a non-zero exit code (2 for bad input), no traceback, and
no row written anywhere. The same rules are then checked one layer down (the kernel's
Python API) and at the bottom (SQL from psql), where a writer skips both the CLI and
the kernel.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from agentos.kernel import errors, messages, schedules, tasks
from agentos.kernel.db import Kernel

BIG = 2**63  # one past bigint
MB = 1024 * 1024

# Tables whose content bad input must not change (activities included: a refused
# command leaves no audit row either).
TABLES = [
    "tasks",
    "task_dependencies",
    "messages",
    "activities",
    "schedules",
    "schedule_runs",
    "budgets",
    "skills",
    "pgqueuer",
]


def agentos(env: dict[str, str], *args: str, timeout: float = 60) -> Any:
    """The real CLI in a subprocess, with env (as conftest's run_cli, other settings)."""
    return subprocess.run(
        [sys.executable, "-m", "agentos.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def snapshot(url: str) -> dict[str, Any]:
    """Everything a bad input could have touched, as comparable values."""
    out: dict[str, Any] = {}
    with psycopg.connect(url) as conn:
        for t in TABLES:
            out[t] = conn.execute(
                f"SELECT count(*), md5(string_agg(x::text, '' ORDER BY x::text)) FROM agentos.{t} x"
            ).fetchone()
    return out


def assert_refused(r: Any, code: int = 2, needle: str | None = None) -> None:
    """One `error:` line, the exit code, no traceback."""
    assert r.returncode == code, (r.args[3:], r.returncode, r.stdout, r.stderr[-2000:])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), (r.args[3:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    if needle is not None:
        assert needle in r.stderr, (r.args[3:], r.stderr)


@pytest.fixture
def seeded(run_cli: Any, db_url: str) -> dict[str, int]:
    """An inbox task, a failed task (budget 1) and a cancelled one."""
    inbox = json.loads(run_cli("task", "create", "secret-title-inbox", "--json").stdout)["id"]
    failed = json.loads(run_cli("task", "create", "will fail", "--json").stdout)["id"]
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE agentos.tasks SET status = 'failed', budget_usd = 1 WHERE id = %s", (failed,)
        )
    return {"inbox": inbox, "failed": failed}


def test_bad_input_through_the_cli_is_refused_and_changes_nothing(
    run_cli: Any, db_url: str, seeded: dict[str, int]
) -> None:
    inbox, failed = str(seeded["inbox"]), str(seeded["failed"])
    probes: list[tuple[tuple[str, ...], str | None, str | None]] = [
        # titles: empty, blank, escape codes, bidi override, non-UTF-8, too long
        (("task", "create", ""), None, "title"),
        (("task", "create", " \t "), None, "title"),
        (("task", "create", "ok\x1b[2J\x1b[Hspoofed"), None, "U+001B"),
        (("task", "create", "ok\x1b]0;title\x07"), None, "U+001B"),
        (("task", "create", "ok\x9b31m"), None, "U+009B"),
        (("task", "create", "ok\x7f"), None, "U+007F"),
        (("task", "create", "abc\u202edcba"), None, "U+202E"),
        (("task", "create", "x\udcff"), None, "UTF-8"),  # the byte 0xff in argv
        (("task", "create", "x" * 100_000), None, "limit is 500"),
        (("task", "create", "ok", "-d", "a\x1b[31mred"), None, "U+001B"),
        (("task", "create", "ok", "-a", "x\udcfe"), None, "UTF-8"),
        (("task", "create", "ok", "-d", "a\rb"), None, "U+000D"),
        # bodies from stdin: huge, NUL, non-UTF-8
        (("task", "create", "ok", "-d", "-"), "a" * MB, "100000"),
        (("task", "create", "ok", "-d", "-"), "a\x00b", "NUL"),
        (("task", "create", "ok", "-d", "-", "-a", "-"), "x", "stdin"),
        (("message", "send", "-", "--task", inbox), "a" * MB, "limit is 100000"),
        (("message", "send", "-", "--task", inbox), "nul\x00here", "NUL"),
        (("skill", "add", "sk", "-"), "a\x00b", "NUL"),
        (("skill", "add", "sk", "-"), "x\x1b[2J", "U+001B"),
        (("skill", "add", "sk", "-"), "a" * (11 * MB), "larger than"),
        (("skill", "add", "sk", "-", "-d", "two\x1b[Alines"), "ok", "U+001B"),
        (("message", "send", "", "--task", inbox), None, "body"),
        (("message", "send", "  \n ", "--task", inbox), None, "body"),
        (("message", "send", "bell\x07", "--task", inbox), None, "U+0007"),
        (("message", "send", "x\udcff", "--task", inbox), None, "UTF-8"),
        (("message", "send", "hi", "--to", "Bad Name"), None, "no agent"),
        # ids out of range
        (("task", "show", "-1"), None, None),
        (("task", "show", "0"), None, None),
        (("task", "show", str(BIG)), None, "9223372036854775807"),
        (("task", "show", str(2**64 + 5)), None, None),
        (("task", "show", "1e3"), None, None),
        (("task", "cancel", str(BIG)), None, None),
        (("task", "retry", "-5"), None, None),
        (("task", "create", "ok", "--parent", str(BIG)), None, None),
        (("task", "create", "ok", "--parent", "-1"), None, None),
        (("task", "create", "ok", "--depends-on", str(BIG)), None, None),
        (("task", "create", "ok", "--depends-on", "0"), None, None),
        (("message", "send", "hi", "--task", str(BIG)), None, None),
        (("message", "send", "hi", "--task", "-3"), None, None),
        (("log", "--task", str(BIG)), None, None),
        (("log", "-n", "0"), None, None),
        (("task", "list", "--limit", str(BIG)), None, None),
        # budgets: NaN, infinite, negative, zero, huge, not a number; and on an inbox task
        (("task", "retry", failed, "--budget", "nan"), None, "finite"),
        (("task", "retry", failed, "--budget", "NaN"), None, "finite"),
        (("task", "retry", failed, "--budget", "inf"), None, "finite"),
        (("task", "retry", failed, "--budget", "-infinity"), None, "finite"),
        (("task", "retry", failed, "--budget", "-1"), None, "finite"),
        (("task", "retry", failed, "--budget", "0"), None, "finite"),
        (("task", "retry", failed, "--budget", "1e12"), None, "finite"),
        (("task", "retry", failed, "--budget", "lots"), None, "not a number"),
        (("task", "retry", inbox, "--budget", "3"), None, "nothing changed"),
        # roles nobody has
        (("task", "create", "x", "--role", "workr"), None, "agentos agent run --role workr"),
        (("schedule", "add", "s", "* * * * *", "--role", "workr"), None, "unknown role"),
        # crons that do not parse or never fire
        (("schedule", "add", "s", "0 0 31 2 *", "--role", "worker"), None, "never fires"),
        (("schedule", "add", "s", "0 0 30 2 *", "--role", "worker"), None, "never fires"),
        (("schedule", "add", "s", "61 * * * *", "--role", "worker"), None, "bad cron"),
        (("schedule", "add", "s", "", "--role", "worker"), None, "bad cron"),
        (("schedule", "add", "s", "* * *", "--role", "worker"), None, "bad cron"),
        (("schedule", "add", "s", "* * * * *\x1b[2J", "--role", "worker"), None, "U+001B"),
        (("schedule", "add", "s", "* " * 5000, "--role", "worker"), None, "bad cron"),
        (("schedule", "add", "bad name!", "* * * * *", "--role", "worker"), None, "name"),
        (("schedule", "add", "s", "* * * * *", "--agent", "ghost"), None, "no agent 'ghost'"),
        (("schedule", "add", "s", "* * * * *"), None, "exactly one"),
        # preconditions that are not one boolean expression, or that try to do more
        *[
            (
                ("schedule", "add", "s", "* * * * *", "--role", "worker", "--precondition", p),
                None,
                "bad precondition",
            )
            for p in [
                "true; drop table agentos.tasks",
                "true) IS TRUE; DROP TABLE agentos.tasks; SELECT (true",
                "true) IS TRUE; SELECT (true",
                "1",
                "'yes'::text",
                "",
                "no_such_column",
                "true\x1b[2J",
                "(SELECT title FROM agentos.tasks ORDER BY id LIMIT 1)::int > 0",
                "pg_read_file('/etc/passwd') IS NOT NULL",
                "pg_read_file('/etc/passwd')::int > 0",
                "pg_ls_dir('.') IS NOT NULL",
                "lo_import('/etc/passwd') > 0",
                "set_config('role', 'none', true) IS NOT NULL",
                "nextval('agentos.tasks_id_seq') > 0",
                "pg_sleep(30) IS NULL",
                "x" * 5000,
            ]
        ],
    ]
    before = snapshot(db_url)
    for args, stdin, needle in probes:
        t0 = time.monotonic()
        r = run_cli(*args, input=stdin, timeout=30)
        assert_refused(r, 2, needle)
        assert "root:" not in r.stderr and "secret-title" not in r.stderr, r.stderr
        assert time.monotonic() - t0 < 15, (args, "took too long")
        assert snapshot(db_url) == before, args
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT status, budget_usd FROM agentos.tasks WHERE id = %s", (int(inbox),)
        ).fetchone()
        assert row == ("inbox", None)
        assert conn.execute("SELECT count(*) FROM agentos.tasks").fetchone() == (2,)
        assert conn.execute("SELECT to_regclass('agentos.tasks') IS NOT NULL").fetchone() == (True,)


def test_control_characters_that_are_only_line_breaks_fold_into_one_line(
    run_cli: Any, db_url: str
) -> None:
    r = run_cli("task", "create", "  first line\n\tsecond line\r\n", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["title"] == "first line second line"
    r = run_cli("task", "create", "kept", "-d", "-", "--json", input="line 1\r\n\tline 2\n")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["description"] == "line 1\n\tline 2\n"


def test_terminal_output_escapes_what_older_rows_or_agents_wrote(run_cli: Any, db_url: str) -> None:
    tid = json.loads(run_cli("task", "create", "plain", "--json").stdout)["id"]
    with psycopg.connect(db_url) as conn:
        # what an agent's tool output or a row from before 004 can hold
        conn.execute(
            "UPDATE agentos.tasks SET error = E'tests failed\\n\\x1b[31mFAILED\\x1b[0m\\rok' "
            "WHERE id = %s",
            (tid,),
        )
        conn.execute(
            "INSERT INTO agentos.activities (kind, actor, task_id, message) "
            "VALUES ('note', 'x', %s, E'fake\\n2099-01-01 00:00:00 task.done  kernel #1 done\\x1b[2J')",
            (tid,),
        )
    shown = run_cli("task", "show", str(tid))
    assert shown.returncode == 0 and "\x1b" not in shown.stdout and "\r" not in shown.stdout
    assert "\\x1b[31mFAILED" in shown.stdout
    log = run_cli("log", "--task", str(tid))
    assert "\x1b" not in log.stdout
    assert len(log.stdout.splitlines()) == 2  # task.created + the note, one line each
    assert "fake\\n2099" in log.stdout


def test_retry_with_budget_is_one_transaction(run_cli: Any, db_url: str) -> None:
    tid = json.loads(run_cli("task", "create", "x", "--json").stdout)["id"]
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE agentos.tasks SET status = 'blocked' WHERE id = %s", (tid,))
        conn.execute(
            "INSERT INTO agentos.budgets (scope, limit_usd, spent_usd) VALUES (%s, 1, 1)",
            (f"task:{tid}",),
        )
    r = run_cli("task", "retry", str(tid), "--budget", "3", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "inbox"
    with psycopg.connect(db_url) as conn:
        assert conn.execute(
            "SELECT budget_usd FROM agentos.tasks WHERE id = %s", (tid,)
        ).fetchone() == (3,)
        assert conn.execute(
            "SELECT limit_usd FROM agentos.budgets WHERE scope = %s", (f"task:{tid}",)
        ).fetchone() == (3,)
    # now inbox: the same command is refused and the budget stays 3
    r = run_cli("task", "retry", str(tid), "--budget", "7")
    assert_refused(r, 2, "nothing changed")
    with psycopg.connect(db_url) as conn:
        assert conn.execute(
            "SELECT budget_usd FROM agentos.tasks WHERE id = %s", (tid,)
        ).fetchone() == (3,)


def test_roles_are_known_from_files_or_agents(
    run_cli: Any, cli_env: dict[str, str], db_url: str
) -> None:
    roles = Path(cli_env["AGENTOS_HOME"]) / "roles"
    roles.mkdir(parents=True)
    (roles / "docs-writer.yaml").write_text("model: agentos/scripted\n")
    assert run_cli("task", "create", "x", "--role", "docs-writer").returncode == 0
    assert run_cli("schedule", "add", "s", "* * * * *", "--role", "docs-writer").returncode == 0
    extra = Path(cli_env["AGENTOS_HOME"]) / "elsewhere"
    extra.mkdir()
    (extra / "translator.yaml").write_text("model: agentos/scripted\n")
    r = run_cli("task", "create", "x", "--role", "translator")
    assert_refused(r, 2, "unknown role 'translator'")
    r = agentos(
        {**cli_env, "AGENTOS_ROLES_DIR": str(extra)}, "task", "create", "x", "--role", "translator"
    )
    assert r.returncode == 0, r.stderr
    with psycopg.connect(db_url) as conn:  # a pod elsewhere runs this role
        conn.execute("INSERT INTO agentos.agents (name, role) VALUES ('remote-1', 'remote')")
    assert run_cli("task", "create", "x", "--role", "remote").returncode == 0
    # an explicit assignee takes the task whatever its role
    assert run_cli("task", "create", "x", "--role", "any", "--assign", "remote-1").returncode == 0
    assert run_cli("schedule", "add", "a", "* * * * *", "--agent", "remote-1").returncode == 0


@pytest.mark.parametrize(
    "url, needle",
    [
        ("postgresq://u:hunter2@localhost/agentos", "postgresq"),
        ("mysql://u:hunter2@localhost/agentos", "mysql"),
        ("", "empty"),
        ("   ", "empty"),
        ("hunter2 nonsense", "not a PostgreSQL URL"),
    ],
)
def test_a_mistyped_database_url_fails_at_once(
    cli_env: dict[str, str], url: str, needle: str
) -> None:
    t0 = time.monotonic()
    r = agentos({**cli_env, "AGENTOS_DATABASE_URL": url}, "task", "list", timeout=30)
    assert time.monotonic() - t0 < 5
    assert_refused(r, 2, needle)
    assert "AGENTOS_DATABASE_URL" in r.stderr and "hunter2" not in r.stderr


# ------------------------------------------------------------------ kernel API ----


async def test_the_kernel_refuses_what_the_cli_refuses(kernel: Kernel) -> None:
    async with kernel.connection() as conn:
        for bad in ["x" * MB, "a\x00b", "a\x1b[2J", "\u2028x\u202e", "x\udcff", ""]:
            with pytest.raises(errors.BadInput):
                await tasks.create_task(conn, title=bad)
        for bad in ["a" * MB, "a\x00b", "x\x1b[31m", "x\udcff"]:
            with pytest.raises(errors.BadInput):
                await tasks.create_task(conn, title="ok", description=bad)
            with pytest.raises(errors.BadInput):
                await messages.send_message(conn, body=bad)
        with pytest.raises(errors.BadInput):
            await tasks.create_task(conn, title="ok", parent_id=BIG)
        with pytest.raises(errors.BadInput):
            await tasks.create_task(conn, title="ok", depends_on=[-1])
        with pytest.raises(errors.NotFound):
            await tasks.get_task(conn, BIG)
        with pytest.raises(errors.NotFound):
            await tasks.get_task(conn, -1)
        t = await tasks.create_task(conn, title="budgeted")
        await tasks.cancel(conn, t.id, actor="test")
        for amount in [math.nan, math.inf, -math.inf, -1.0, 0.0, 1e12]:
            with pytest.raises(errors.BadInput):
                await tasks.retry(conn, t.id, actor="test", budget_usd=amount)
        assert (await tasks.get_task(conn, t.id)).status == "cancelled"
        assert (await tasks.get_task(conn, t.id)).budget_usd is None
        with pytest.raises(errors.BadInput, match="never fires"):
            await schedules.add_schedule(conn, name="feb", cron="0 0 31 2 *", role="worker")
        with pytest.raises(errors.BadInput, match="no agent"):
            await schedules.add_schedule(conn, name="ghost", cron="* * * * *", agent="ghost")
        assert await schedules.list_schedules(conn) == []


# ------------------------------------------------------------------------- SQL ----


def test_sql_holds_the_same_rules_for_psql_writers(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        tid = conn.execute(
            "INSERT INTO agentos.tasks (title) VALUES ('ok') RETURNING id"
        ).fetchone()[0]
        refused = [
            (
                "INSERT INTO agentos.tasks (title) VALUES (E'a\\x1b[2Jb')",
                psycopg.errors.CheckViolation,
            ),
            (
                "INSERT INTO agentos.tasks (title) VALUES (E'two\\nlines')",
                psycopg.errors.CheckViolation,
            ),
            (
                "INSERT INTO agentos.tasks (title) VALUES (U&'bidi\\202E')",
                psycopg.errors.CheckViolation,
            ),
            (
                "INSERT INTO agentos.tasks (title, description) VALUES ('ok', E'\\x07')",
                psycopg.errors.CheckViolation,
            ),
            (
                f"INSERT INTO agentos.messages (task_id, body) VALUES ({tid}, E'x\\x1b[31m')",
                psycopg.errors.CheckViolation,
            ),
            (
                f"UPDATE agentos.tasks SET budget_usd = 'NaN' WHERE id = {tid}",
                psycopg.errors.CheckViolation,
            ),
            (
                f"UPDATE agentos.tasks SET budget_usd = 'Infinity' WHERE id = {tid}",
                psycopg.errors.NumericValueOutOfRange,
            ),
            (
                "INSERT INTO agentos.budgets (scope, limit_usd) VALUES ('task:1', 'NaN')",
                psycopg.errors.CheckViolation,
            ),
            (
                "INSERT INTO agentos.llm_calls (agent, role, model, cost_usd, outcome) "
                "VALUES ('a', 'worker', 'm', -1, 'ok')",
                psycopg.errors.CheckViolation,
            ),
            (
                "SELECT agentos.reserve_budget(ARRAY['task:1'], ARRAY['NaN'::numeric], 1000)",
                psycopg.errors.RaiseException,
            ),
            (
                "SELECT agentos.reserve_budget(ARRAY['task:1'], ARRAY[10::numeric], 'NaN')",
                psycopg.errors.RaiseException,
            ),
            (
                "SELECT agentos.reserve_budget(ARRAY['task:1'], ARRAY[10::numeric], -5)",
                psycopg.errors.RaiseException,
            ),
            (
                "SELECT agentos.settle_budget(ARRAY['task:1'], 1, 'NaN')",
                psycopg.errors.RaiseException,
            ),
            (
                "INSERT INTO agentos.schedules (name, cron, target_agent, next_fire_at) "
                "VALUES ('s', '* * * * *', 'ghost', now())",
                psycopg.errors.ForeignKeyViolation,
            ),
            ("SELECT agentos.eval_precondition('true')", psycopg.errors.ReadOnlySqlTransaction),
        ]
        for stmt, exc in refused:
            with pytest.raises(exc):
                conn.execute(stmt)
        # the probe that found it: a NaN limit admitted 200 reservations of $1000
        granted = 0
        for _ in range(200):
            try:
                conn.execute(
                    "SELECT agentos.reserve_budget(ARRAY[%s], ARRAY['NaN'::numeric], 1000)",
                    (f"task:{tid}",),
                )
                granted += 1
            except psycopg.errors.RaiseException:
                pass
        assert granted == 0
        assert conn.execute("SELECT count(*) FROM agentos.budgets").fetchone() == (0,)


def test_preconditions_run_read_only_in_one_select_without_file_access(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:

        def ev(expr: str) -> Any:
            with conn.transaction(force_rollback=True):
                conn.execute("SET TRANSACTION READ ONLY")
                return conn.execute("SELECT agentos.eval_precondition(%s)", (expr,)).fetchone()[0]

        assert ev("true") is True
        assert ev("NULL::boolean") is False
        assert ev("EXISTS (SELECT 1 FROM agentos.tasks)") is False
        assert ev("(SELECT count(*) FROM tasks) = 0 -- comment") is True
        for expr, exc in [
            ("true) IS TRUE; SELECT (false", psycopg.errors.InvalidCursorDefinition),
            ("pg_read_file('/etc/passwd') IS NOT NULL", psycopg.errors.InsufficientPrivilege),
            ("set_config('role', 'none', true) IS NOT NULL", psycopg.errors.InsufficientPrivilege),
            ("1", psycopg.errors.DatatypeMismatch),
        ]:
            with pytest.raises(exc):
                ev(expr)
        conn.rollback()
        owner = conn.execute(
            "SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'eval_precondition'"
        ).fetchone()[0]
        assert owner == "agentos_precondition"


async def _insert_schedule(
    kernel: Kernel, name: str, cron: str, precondition: str | None, **target: str
) -> None:
    """What a psql writer can store, past every kernel check."""
    async with kernel.connection() as conn:
        await conn.execute(
            "INSERT INTO agentos.schedules (name, cron, target_role, precondition, next_fire_at) "
            "VALUES (%s, %s, %s, %s, now() - interval '1 minute')",
            (name, cron, target.get("role", "worker"), precondition),
        )


async def test_at_fire_time_preconditions_are_read_only_bounded_and_quiet(
    kernel: Kernel, caplog: pytest.LogCaptureFixture
) -> None:
    async with kernel.connection() as conn:
        t = await tasks.create_task(conn, title="must survive")
        # a function that writes: the probe's precondition passed the add-time check
        # (which it skipped writing in) and cancelled a task when it fired
        await conn.execute(
            "CREATE FUNCTION public.sneaky() RETURNS boolean LANGUAGE sql AS "
            "$$ UPDATE agentos.tasks SET status = 'cancelled'; SELECT true $$"
        )
    await _insert_schedule(kernel, "writes", "* * * * *", "public.sneaky()")
    await _insert_schedule(
        kernel, "two", "* * * * *", "true) IS TRUE; DELETE FROM agentos.tasks; SELECT (true"
    )
    await _insert_schedule(
        kernel, "reads-file", "* * * * *", "pg_read_file('/etc/passwd')::int > 0"
    )
    await _insert_schedule(
        kernel, "leaks", "* * * * *", "(SELECT title FROM agentos.tasks LIMIT 1)::int > 0"
    )
    await _insert_schedule(kernel, "slow", "* * * * *", "pg_sleep(30) IS NULL")
    await _insert_schedule(kernel, "locks", "* * * * *", "pg_advisory_lock(42) IS NOT NULL")
    await _insert_schedule(kernel, "feb31", "0 0 31 2 *", None)
    await _insert_schedule(kernel, "fine", "* * * * *", "true")
    caplog.set_level(logging.WARNING, logger="agentos.kernel.schedules")
    t0 = time.monotonic()
    fired = dict(await schedules.fire_due(kernel))
    assert time.monotonic() - t0 < 15
    assert fired == {
        "writes": False,
        "two": False,
        "reads-file": False,
        "leaks": False,
        "slow": False,
        "locks": True,
        "feb31": False,
        "fine": True,
    }
    async with kernel.connection() as conn:
        assert (await tasks.get_task(conn, t.id)).status == "inbox"
        acts = await (
            await conn.execute(
                "SELECT kind, message FROM agentos.activities WHERE kind LIKE 'schedule.%' "
                "ORDER BY id"
            )
        ).fetchall()
        disabled = await (
            await conn.execute("SELECT name FROM agentos.schedules WHERE NOT enabled")
        ).fetchall()
        locks = await (
            await conn.execute(
                "SELECT count(*) AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND l.objid = 42 AND d.datname = current_database()"
            )
        ).fetchone()
    assert [r["name"] for r in disabled] == ["feb31"]
    assert locks is not None and locks["n"] == 0
    errs = [a["message"] for a in acts if a["kind"] == "schedule.precondition_error"]
    assert len(errs) == 5
    text = " ".join(errs) + caplog.text
    assert "root:" not in text and "must survive" not in text
    assert "ran longer than" in text and "not one expression" in text
    assert [a["kind"] for a in acts].count("schedule.fired") == 2
    # the next round does not trip on the disabled one
    assert "feb31" not in dict(await schedules.fire_due(kernel))


# ------------------------------------------------------- embedded server start ----


def test_a_read_command_says_when_it_starts_the_embedded_database(tmp_path: Path) -> None:
    from agentos.kernel import embedded

    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_")}
    env["AGENTOS_HOME"] = str(tmp_path / "home")
    pgdata = tmp_path / "home" / "pgdata"
    try:
        r = agentos(env, "task", "list", timeout=180)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "no tasks"
        assert f"starting the embedded database at {pgdata}" in r.stderr
        again = agentos(env, "task", "list", "--json")
        assert again.returncode == 0 and again.stderr == "" and json.loads(again.stdout) == []
        stopped = agentos(env, "stop")
        assert stopped.returncode == 0 and "stopped the embedded database" in stopped.stdout
        st = agentos(env, "status", "--json")  # status looks, it never starts it
        assert st.returncode == 0 and json.loads(st.stdout)["database_up"] is False
        assert embedded.running_server(pgdata) is None
    finally:
        embedded.stop(pgdata)
