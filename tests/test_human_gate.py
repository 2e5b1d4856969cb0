"""The human gate in the kernel and the gate's decision: the approval state, what waits
for a person, and migrations that must commit part-way (ALTER TYPE ... ADD VALUE)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg
import pytest
from agentos import sql
from agentos.agents.config import RoleConfig
from agentos.agents.gate import decide, describe_diffstat, diffstat
from agentos.agents.workspace import FileChange
from agentos.kernel import approvals, errors, tasks
from agentos.kernel.db import Kernel
from agentos.kernel.migrate import migrate, parts
from agentos.kernel.models import Task, TaskStatus

# ------------------------------------------------------------ the decision --


def _role(**kw: Any) -> RoleConfig:
    return RoleConfig.model_validate(
        {"name": "reviewer", "model": "x", "prompts": {"system": "s", "task": "t"}, **kw}
    )


def _task(approval: str | None = None) -> Task:
    now = dt.datetime.now(dt.UTC)
    return Task.model_validate(
        {
            "id": 7, "title": "t", "description": "", "acceptance": "", "status": "review",
            "priority": 0, "role": "worker", "review_role": "reviewer", "assignee": None,
            "created_by": "me", "parent_id": None, "branch": "agentos/task-7", "result": None,
            "error": None, "attempts": 1, "max_attempts": 3, "rejections": 0,
            "available_at": now, "lease_session": None, "lease_agent": None,
            "lease_token": None, "lease_expires_at": None, "metadata": {}, "created_at": now,
            "updated_at": now, "started_at": None, "completed_at": None, "approval": approval,
        }
    )  # fmt: skip


SMALL = [FileChange("notes/a.md", 3, 0)]
BIG = [FileChange("src/app.py", 40, 5), FileChange("tests/test_app.py", 20, 0)]


def test_merge_auto_merges_and_merge_human_waits() -> None:
    assert decide(_role(), _task(), BIG).merge
    held = decide(_role(merge="human"), _task(), SMALL)
    assert not held.merge and "merge: human" in held.reason


def test_the_tasks_own_approval_beats_the_role() -> None:
    assert not decide(_role(), _task("human"), SMALL).merge
    assert "approval: human" in decide(_role(), _task("human"), SMALL).reason
    assert decide(_role(merge="human"), _task("auto"), BIG).merge


def test_auto_merge_max_lines_lets_small_changes_through_and_holds_big_ones() -> None:
    role = _role(auto_merge_max_lines=10)
    assert decide(role, _task(), SMALL).merge
    held = decide(role, _task(), BIG)
    assert not held.merge and "65 lines changed" in held.reason and "at most 10" in held.reason
    # exactly at the limit still merges; a binary file cannot be measured
    assert decide(_role(auto_merge_max_lines=3), _task(), SMALL).merge
    binary = decide(role, _task(), [FileChange("logo.png", None, None)])
    assert not binary.merge and "logo.png" in binary.reason


def test_auto_merge_paths_hold_changes_outside_them() -> None:
    role = _role(auto_merge_paths=["notes/*", "*.md"])
    assert decide(role, _task(), SMALL).merge
    held = decide(role, _task(), [*SMALL, *BIG])
    assert not held.merge and "src/app.py" in held.reason and "notes/a.md" not in held.reason


def test_a_bad_merge_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="merge"):
        _role(merge="sometimes")
    with pytest.raises(ValueError, match="auto_merge_max_lines"):
        _role(auto_merge_max_lines=-1)


def test_diffstat_counts_files_and_lines() -> None:
    stat = diffstat([*BIG, FileChange("logo.png", None, None)])
    assert (stat["files"], stat["added"], stat["deleted"]) == (3, 60, 5)
    assert describe_diffstat(stat) == "3 files, +60 -5"
    assert stat["changes"][2] == {"path": "logo.png", "added": None, "deleted": None}


# ------------------------------------------------- the state, in the database --


def test_approval_is_a_state_of_the_machine_and_psql_is_held_to_it(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        moves = {
            (a, b)
            for a, b in conn.execute(
                "SELECT from_status::text, to_status::text FROM agentos.task_transitions "
                "WHERE 'approval' IN (from_status, to_status)"
            )
        }
        assert ("review", "approval") in moves and ("approval", "done") in moves
        assert ("approval", "inbox") in moves and ("approval", "assigned") in moves
        assert ("approval", "review") not in moves and ("in_progress", "approval") not in moves
        (tid,) = conn.execute(
            "INSERT INTO agentos.tasks (title) VALUES ('psql task') RETURNING id"
        ).fetchone()  # type: ignore[misc]
        with pytest.raises(psycopg.errors.CheckViolation, match="inbox -> approval"):
            conn.execute("UPDATE agentos.tasks SET status = 'approval' WHERE id = %s", (tid,))
        # board order: approval sits between review and done
        order = [r[0] for r in conn.execute("SELECT status::text FROM agentos.board_summary")]
        assert order.index("approval") == order.index("review") + 1 == order.index("done") - 1


def test_a_subtask_inherits_its_goals_approval(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        (goal,) = conn.execute(
            "INSERT INTO agentos.tasks (title, role, approval) "
            "VALUES ('goal', 'orchestrator', 'human') RETURNING id"
        ).fetchone()  # type: ignore[misc]
        rows = conn.execute(
            "INSERT INTO agentos.tasks (title, parent_id, approval) VALUES "
            "('inherits', %(g)s, NULL), ('its own', %(g)s, 'auto') RETURNING approval",
            {"g": goal},
        ).fetchall()
        assert [r[0] for r in rows] == ["human", "auto"]
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO agentos.tasks (title, approval) VALUES ('x', 'maybe')")


async def _claim(conn: Any, task_id: int, agent: str, role: str) -> None:
    """Claim the task's queued job as a dispatcher does (agentos.claim_jobs)."""
    from agentos.kernel.sessions import register_session

    session = await register_session(conn, role=role, agents=[agent])
    job = await (
        await conn.execute(
            "SELECT id FROM agentos.pgqueuer WHERE dedupe_key = %s", (f"task:{task_id}",)
        )
    ).fetchone()
    assert job is not None
    await conn.execute(
        "SELECT * FROM agentos.claim_jobs(%s, %s, %s, %s, %s, '30 seconds')",
        ([job["id"]], [task_id], [agent], role, session),
    )


async def _in_review(kernel: Kernel, title: str = "gated") -> Task:
    """A task a reviewer has claimed after its worker handed it over (real claims)."""
    async with kernel.connection() as conn:
        t = await tasks.create_task(conn, title=title)
        await _claim(conn, t.id, "w1", "worker")
        t = await tasks.get_task(conn, t.id)
        t = await tasks.submit_for_review(conn, t, actor="w1", branch="agentos/task-x", summary="s")
        await _claim(conn, t.id, "r1", "reviewer")
        return await tasks.get_task(conn, t.id)


async def test_hold_needs_the_reviews_lease_and_records_what_a_person_sees(
    kernel: Kernel,
) -> None:
    t = await _in_review(kernel)
    assert t.lease_agent == "r1"
    async with kernel.connection() as conn:
        stale = t.model_copy(update={"lease_token": uuid.uuid4()})
        with pytest.raises(errors.StaleLease):
            await approvals.hold(conn, stale, actor="r1", comment="c", reason="r", diffstat={})
        assert (await tasks.get_task(conn, t.id)).status == TaskStatus.review
        held = await approvals.hold(
            conn, t, actor="r1", comment="Looks right.", reason="merge: human",
            diffstat=diffstat(SMALL),
        )  # fmt: skip
        assert held.status == TaskStatus.approval and held.lease_token is None
        assert held.metadata["approval"]["comment"] == "Looks right."
        assert held.metadata["approval"]["files"] == 1
        waiting = await approvals.awaiting(conn)
        assert [(w["id"], w["waits_for"], w["reason"], w["added"]) for w in waiting] == [
            (t.id, "merge", "merge: human", 3)
        ]
        # nothing is queued for a task in approval: only a person moves it on
        jobs = await (
            await conn.execute(
                "SELECT count(*) AS n FROM agentos.pgqueuer WHERE dedupe_key = %s",
                (f"task:{t.id}",),
            )
        ).fetchone()
        assert jobs is not None and jobs["n"] == 0
        kinds = [
            r["kind"]
            for r in await (
                await conn.execute(
                    "SELECT kind FROM agentos.activities WHERE task_id = %s ORDER BY id", (t.id,)
                )
            ).fetchall()
        ]
        assert kinds[-1] == "task.approval"


async def test_a_person_rejects_only_what_waits_and_the_feedback_goes_to_the_worker(
    kernel: Kernel,
) -> None:
    t = await _in_review(kernel)
    async with kernel.connection() as conn:
        with pytest.raises(errors.InvalidTransition, match="not waiting for approval"):
            await approvals.reject(conn, t.id, actor="alice", feedback="no")
        with pytest.raises(errors.NotFound):
            await approvals.reject(conn, 999999, actor="alice", feedback="no")
        await approvals.hold(conn, t, actor="r1", comment="ok", reason="merge: human", diffstat={})
        back = await approvals.reject(conn, t.id, actor="alice", feedback="Rename it to hello.py")
        assert back.status == TaskStatus.assigned and back.assignee == "w1"  # w1 is alive
        assert back.rejections == 1 and back.metadata["approval"]["decision"]["by"] == "alice"
        msgs = await (
            await conn.execute(
                "SELECT from_agent, to_agent, kind, body FROM agentos.messages WHERE task_id = %s",
                (t.id,),
            )
        ).fetchall()
        assert [tuple(m.values()) for m in msgs] == [
            ("alice", "w1", "review", "Rename it to hello.py")
        ]
        assert await approvals.awaiting(conn) == []


async def test_a_task_blocked_on_its_budget_waits_for_a_person(kernel: Kernel) -> None:
    async with kernel.connection() as conn:
        t = await tasks.create_task(conn, title="pricey")
        await tasks.transition(
            conn, t.id, TaskStatus.blocked, actor="w1", error=f"budget exhausted: task:{t.id}"
        )
        other = await tasks.create_task(conn, title="stuck for another reason")
        await tasks.transition(conn, other.id, TaskStatus.blocked, actor="w1", error="no key")
        waiting = await approvals.awaiting(conn)
        assert [(w["id"], w["waits_for"]) for w in waiting] == [(t.id, "budget")]
        blocked = await tasks.get_task(conn, t.id)
        assert approvals.waits_on_budget(blocked)
        with pytest.raises(errors.InvalidTransition, match="--budget"):
            approvals.refuse_unless_waiting(blocked, "approve")


# ------------------------------------------------------ migrations in parts --


def test_a_migration_is_cut_at_its_commit_points() -> None:
    text = "CREATE TABLE a ();\n-- agentos:commit\nCREATE TABLE b ();\n-- agentos:commit  \n"
    assert [p.strip() for p in parts(text)] == ["CREATE TABLE a ();", "CREATE TABLE b ();"]
    assert parts("SELECT 1; -- agentos:commit is only a line of its own") == [
        "SELECT 1; -- agentos:commit is only a line of its own"
    ]
    (ours,) = [m for m in sql.migrations() if m.version == "009"]
    assert len(parts(ours.sql)) == 2 and "ADD VALUE IF NOT EXISTS" in parts(ours.sql)[0]


async def test_a_migration_stopped_between_parts_is_applied_again_from_its_start(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = sql.migrations()
    first = (
        "ALTER TYPE agentos.task_status ADD VALUE IF NOT EXISTS 'zz_later';\n-- agentos:commit\n"
    )
    broken = sql.Migration(
        "999", "test", first + "INSERT INTO agentos.task_transitions VALUES ('zz_later', 'inbox');"
        "\nSELECT agentos.no_such_function();\n",
    )  # fmt: skip
    fixed = sql.Migration(
        "999", "test", first + "INSERT INTO agentos.task_transitions VALUES ('zz_later', 'inbox');\n"
    )  # fmt: skip
    conn = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
    try:
        monkeypatch.setattr(sql, "migrations", lambda: (*shipped, broken))
        with pytest.raises(psycopg.errors.UndefinedFunction):
            await migrate(conn)
        # the first part committed (a value can only be used once committed), the rest not
        values = await (
            await conn.execute("SELECT enum_range(NULL::agentos.task_status)::text")
        ).fetchone()
        assert values is not None and "zz_later" in values[0]
        assert not await (
            await conn.execute("SELECT 1 FROM agentos.schema_migrations WHERE version = '999'")
        ).fetchone()
        monkeypatch.setattr(sql, "migrations", lambda: (*shipped, fixed))
        assert await migrate(conn) == ["999"]
        row = await (
            await conn.execute(
                "SELECT count(*) FROM agentos.task_transitions WHERE from_status = 'zz_later'"
            )
        ).fetchone()
        assert row is not None and row[0] == 1
    finally:
        await conn.close()
