"""`y` and `x` in mission control decide what waits for a person, as `agentos task
approve|reject` do: a held merge (real git repository and branch, held by the review
with the kernel's own functions), a task blocked on its budget, and refusals that change
nothing. The App runs headless (Textual Pilot) on this test's embedded PostgreSQL."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from agentos.agents import gate
from agentos.agents.config import AgentSettings
from agentos.agents.loop import render
from agentos.agents.workspace import Workspace, branch_name
from agentos.kernel import approvals, tasks
from agentos.kernel import messages as kmessages
from agentos.kernel.db import Kernel
from agentos.kernel.models import Task, TaskStatus
from agentos.kernel.sessions import register_session
from agentos.tui.board import Board
from agentos.tui.budget_form import BudgetForm
from agentos.tui.decision_screens import ApproveScreen, RejectForm, held_merge
from agentos.tui.team_header import TeamHeader
from textual.widgets import Input, Static, TextArea

APPROVAL_COLUMN = "5"  # inbox, assigned, in progress, review, approval, done, stuck


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def agent_settings(db_url: str, tmp_path: Path) -> AgentSettings:
    return AgentSettings(
        database_url=db_url,  # type: ignore[arg-type]
        home=tmp_path / "home",
        workspace=tmp_path / "repo",
        poll_interval=0.5,
        lease_seconds=30.0,
    )


async def _claim(conn: Any, task_id: int, agent: str, role: str) -> None:
    """Claim the task's queued job as a dispatcher does (agentos.claim_jobs)."""
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


async def _held(kernel: Kernel, s: AgentSettings, title: str = "Write the gate notes") -> Task:
    """A task whose worker committed on its branch and whose review held the merge for a
    person: the workspace, the worktree and the commit are real git; the claims, the
    hand-over to review and the hold are the kernel's functions (as agents call them)."""
    ws = await Workspace(s.workspace_path, s.worktrees_path, kernel=kernel).ensure()
    async with kernel.connection() as conn:
        t = await tasks.create_task(conn, title=title, created_by="alice")
        await _claim(conn, t.id, "w1", "worker")
        tree = await ws.worktree(t.id)
        (tree / "notes").mkdir()
        (tree / "notes" / "gate.md").write_text("# Gate\n\nA person approves.\nThen it merges.\n")
        _git(tree, "add", "-A")
        _git(tree, "-c", "user.name=w1", "-c", "user.email=w1@x", "commit", "-qm", "gate notes")
        t = await tasks.get_task(conn, t.id)
        t = await tasks.submit_for_review(
            conn, t, actor="w1", branch=branch_name(t.id), summary="notes written"
        )
        await _claim(conn, t.id, "r1", "reviewer")
        t = await tasks.get_task(conn, t.id)
        changes = await ws.numstat(t.id)
        return await approvals.hold(
            conn, t, actor="r1", comment="Acceptance criteria met.",
            reason="the reviewer role merges with a person's approval (merge: human)",
            diffstat=gate.diffstat(changes),
        )  # fmt: skip


async def _row(sql: Any, tid: int) -> dict[str, Any]:
    (row,) = await sql(
        "SELECT status::text AS status, assignee, rejections, budget_usd, metadata, updated_at "
        "FROM agentos.tasks WHERE id = %s",
        (tid,),
    )
    return row


def _last_error(app: Any) -> str:
    errors = [n.message for n in app._notifications if n.severity == "error"]
    return errors[-1] if errors else ""


async def _select_approval(pilot: Any, app: Any, helpers: Any, tid: int) -> None:
    board = app.query_one(Board)
    await helpers.wait_for(pilot, lambda: tid in board.card_ids("approval"), what="held card")
    await pilot.press(APPROVAL_COLUMN)
    assert board.selected_card().id == tid


async def test_y_shows_the_held_merge_and_merges_it_into_the_base_branch(
    make_app, kernel, agent_settings, sql, helpers
) -> None:
    held = await _held(kernel, agent_settings)
    repo = agent_settings.workspace_path
    app = make_app(settings=agent_settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await helpers.settle(pilot)
        await _select_approval(pilot, app, helpers, held.id)
        header = app.query_one(TeamHeader)
        assert app.header_stats is not None and app.header_stats.awaiting == 1

        # the base branch is busy (main checked out with an uncommitted change): the
        # kernel's one-line error, and the task still waits, its branch unmerged
        (repo / "README.md").write_text("edited by hand\n")
        await pilot.press("y")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, ApproveScreen), what="ask")
        shown = str(app.screen.query_one("#question", Static).render())
        assert f"Merge task #{held.id}?" in shown and "Write the gate notes" in shown
        assert f"branch {branch_name(held.id)} into the base branch" in shown
        assert "merges with a person's approval (merge: human)" in shown
        assert "approved by r1: Acceptance criteria met." in shown
        assert "changes: 1 file, +4 -0" in shown and "notes/gate.md" in shown
        await pilot.press("y")
        await helpers.wait_for(pilot, lambda: "still waits" in _last_error(app), what="busy")
        assert "uncommitted changes" in _last_error(app) and "\n" not in _last_error(app)
        assert (await _row(sql, held.id))["status"] == "approval"
        assert f"Merge task #{held.id}" not in _git(repo, "log", "--format=%s", "main")

        # n keeps it waiting
        _git(repo, "checkout", "--", "README.md")
        await pilot.press("y")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, ApproveScreen), what="ask")
        await pilot.press("n")
        await pilot.pause()
        assert (await _row(sql, held.id))["status"] == "approval"

        # y, y: merged into main, done, and the activity says who approved it
        await pilot.press("y")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, ApproveScreen), what="ask")
        await pilot.press("y")
        board = app.query_one(Board)
        await helpers.wait_for(pilot, lambda: held.id in board.card_ids("done"), what="done")
        row = await _row(sql, held.id)
        head = _git(repo, "rev-parse", "main").strip()
        assert row["status"] == "done" and row["metadata"]["merged"] == head
        assert row["metadata"]["approval"]["decision"]["by"] == "alice"
        assert f"Merge task #{held.id}: Write the gate notes" in _git(
            repo, "log", "--format=%s", "main"
        )
        assert _git(repo, "show", "main:notes/gate.md").startswith("# Gate")
        merged = await sql(
            "SELECT actor, data->>'commit' AS commit FROM agentos.activities "
            "WHERE task_id = %s AND kind = 'task.merged'",
            (held.id,),
        )
        assert merged == [{"actor": "alice", "commit": head}]
        assert held.id not in board.card_ids("approval")
        await helpers.wait_for(
            pilot,
            lambda: app.header_stats is not None and app.header_stats.awaiting == 0,
            what="header count",
        )
        assert header is app.query_one(TeamHeader)
        notes = [n.message for n in app._notifications]
        assert f"task #{held.id} is now done: merged into main ({head[:12]})" in notes

        # approving it again is refused with the kernel's words, and nothing changes
        before = await _row(sql, held.id)
        await pilot.press("6")
        assert board.selected_card().id == held.id
        await pilot.press("y")
        await helpers.wait_for(
            pilot, lambda: "not waiting for approval" in _last_error(app), what="refused"
        )
        assert _last_error(app).startswith(f"task {held.id} is done, not waiting for approval")
        assert not isinstance(app.screen, ApproveScreen)
        assert await _row(sql, held.id) == before


async def test_x_sends_the_work_back_with_feedback_for_the_workers_next_prompt(
    make_app, kernel, agent_settings, sql, helpers
) -> None:
    held = await _held(kernel, agent_settings)
    app = make_app(settings=agent_settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await helpers.settle(pilot)
        await _select_approval(pilot, app, helpers, held.id)
        await pilot.press("x")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, RejectForm), what="form")
        form = app.screen
        before = await _row(sql, held.id)

        # empty (or blank) feedback is refused in the form, nothing written
        form.query_one("#feedback", TextArea).load_text("  \n ")
        await pilot.press("ctrl+s")
        await helpers.wait_for(pilot, lambda: not form.busy)
        error = str(form.query_one("#error", Static).render())
        assert error == "the feedback is empty: write what the worker must change"
        assert isinstance(app.screen, RejectForm)
        assert await _row(sql, held.id) == before
        assert await sql("SELECT id FROM agentos.messages") == []

        feedback = "Say who approved it, in one line."
        form.query_one("#feedback", TextArea).load_text(feedback)
        await pilot.press("ctrl+s")
        await helpers.wait_for(pilot, lambda: not isinstance(app.screen, RejectForm))
        board = app.query_one(Board)
        await helpers.wait_for(pilot, lambda: held.id in board.card_ids("assigned"), what="back")
        row = await _row(sql, held.id)
        assert (row["status"], row["assignee"], row["rejections"]) == ("assigned", "w1", 1)
        assert row["metadata"]["approval"]["decision"] == {"by": "alice", "decision": "rejected"}
        msgs = await sql(
            "SELECT from_agent, to_agent, kind, body FROM agentos.messages WHERE task_id = %s",
            (held.id,),
        )
        assert msgs == [
            {"from_agent": "alice", "to_agent": "w1", "kind": "review", "body": feedback}
        ]
        reasons = await sql(
            "SELECT actor, message FROM agentos.activities "
            "WHERE task_id = %s AND kind = 'task.assigned' ORDER BY id DESC LIMIT 1",
            (held.id,),
        )
        assert reasons[0]["actor"] == "alice"
        assert f"rejected by alice: {feedback}" in reasons[0]["message"]
        # the worker's next prompt: its review messages are the feedback (agents/runner.py)
        async with kernel.connection() as conn:
            t = await tasks.get_task(conn, held.id)
            thread = await kmessages.list_messages(conn, task_id=held.id, limit=100)
        prompt = render(
            "worker_task.j2", [], task=t.model_dump(mode="json"), skills=[], messages=[],
            feedback=[m.body for m in thread if m.kind == "review"],
        )  # fmt: skip
        assert "The reviewer sent this task back (1 time(s))" in prompt and feedback in prompt
        notes = [n.message for n in app._notifications]
        assert f"task #{held.id} is now assigned (w1): sent back with your feedback" in notes


async def test_y_and_x_on_a_task_that_waits_for_nothing_change_nothing(
    make_app, seeded, sql, helpers
) -> None:
    await seeded()
    app = make_app()
    async with app.run_test() as pilot:
        await helpers.settle(pilot)
        board = app.query_one(Board)
        assert board.selected_card().id == 2  # inbox
        before = await sql("SELECT * FROM agentos.tasks ORDER BY id")
        activities = await sql("SELECT count(*) AS n FROM agentos.activities")
        await pilot.press("y")
        await helpers.wait_for(pilot, lambda: bool(_last_error(app)), what="refusal")
        assert _last_error(app) == (
            "task 2 is inbox, not waiting for approval; only a task in approval can be "
            "approved (nothing changed)"
        )
        await pilot.press("x")
        await helpers.wait_for(pilot, lambda: "rejected" in _last_error(app), what="refusal")
        assert "task 2 is inbox, not waiting for approval" in _last_error(app)
        # a task blocked for another reason than its budget is not approved either
        await pilot.press("7")
        assert board.selected_card().id == 6  # blocked: "task budget $0.50 exhausted"
        await pilot.press("y")
        await helpers.wait_for(pilot, lambda: "task 6 is blocked" in _last_error(app))
        assert not isinstance(app.screen, ApproveScreen | RejectForm | BudgetForm)
        assert await sql("SELECT * FROM agentos.tasks ORDER BY id") == before
        assert await sql("SELECT count(*) AS n FROM agentos.activities") == activities


async def test_y_on_a_task_blocked_on_its_budget_approves_a_new_budget(
    make_app, kernel, sql, helpers
) -> None:
    async with kernel.connection() as conn:
        t = await tasks.create_task(conn, title="Write pricey notes", created_by="alice")
        await tasks.transition(
            conn, t.id, TaskStatus.blocked, actor="w1", error=f"budget exhausted: task:{t.id}"
        )
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await helpers.settle(pilot)
        board = app.query_one(Board)
        await pilot.press("7")
        assert board.selected_card().id == t.id
        await pilot.press("x")  # nothing to reject: it waits on money, not on a merge
        await helpers.wait_for(pilot, lambda: "not waiting for approval" in _last_error(app))
        await pilot.press("y")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, BudgetForm), what="form")
        form = app.screen
        assert form.approve and "approve a budget" in str(form.query_one("#dialog").border_title)
        form.query_one("#budget", Input).value = "0"
        await pilot.press("ctrl+s")
        await helpers.wait_for(pilot, lambda: not form.busy)
        assert "more than $0" in str(form.query_one("#error", Static).render())
        assert (await _row(sql, t.id))["status"] == "blocked"
        form.query_one("#budget", Input).value = "5"
        await pilot.press("ctrl+s")
        await helpers.wait_for(pilot, lambda: not isinstance(app.screen, BudgetForm))
        await helpers.wait_for(pilot, lambda: t.id in board.card_ids("inbox"), what="resumed")
        row = await _row(sql, t.id)
        assert row["status"] == "inbox" and float(row["budget_usd"]) == 5.0
        reasons = await sql(
            "SELECT actor, message FROM agentos.activities WHERE task_id = %s ORDER BY id",
            (t.id,),
        )
        assert any(
            r["actor"] == "alice" and "budget approved by alice: $5" in r["message"]
            for r in reasons
        ), reasons
        notes = [n.message for n in app._notifications]
        assert f"task #{t.id} is now inbox with a budget of $5" in notes


def test_the_approve_screen_never_reads_stored_text_as_markup() -> None:
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    task = Task.model_validate(
        {
            "id": 7, "title": "[bold]x[/bold] \x1b[31mred", "description": "", "acceptance": "",
            "status": "approval", "priority": 0, "role": "worker", "review_role": "reviewer",
            "assignee": None, "created_by": "me", "parent_id": None, "branch": "agentos/task-7",
            "result": None, "error": None, "attempts": 1, "max_attempts": 3, "rejections": 0,
            "available_at": now, "lease_session": None, "lease_agent": None,
            "lease_token": None, "lease_expires_at": None, "created_at": now, "updated_at": now,
            "started_at": None, "completed_at": None, "approval": None,
            "metadata": {"approval": {
                "reviewer": "r1", "comment": "[red]ok[/red]", "reason": "merge: human",
                "files": 12, "added": 30, "deleted": 1,
                "changes": [{"path": f"f{i}.py", "added": 2, "deleted": 0} for i in range(12)],
            }},
        }
    )  # fmt: skip
    text = held_merge(task, "main").plain
    assert "[bold]x[/bold]" in text and "\x1b" not in text and "[red]ok[/red]" in text
    assert "into main" in text and "12 files, +30 -1" in text and "and 4 more" in text


async def test_y_and_x_act_on_the_open_task_screen(
    make_app, kernel, agent_settings, sql, helpers
) -> None:
    from agentos.tui.task_screen import TaskScreen

    held = await _held(kernel, agent_settings)
    app = make_app(settings=agent_settings, open_task=held.id)
    async with app.run_test(size=(100, 30)) as pilot:
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, TaskScreen))
        await helpers.settle(pilot)
        before = await _row(sql, held.id)
        await pilot.press("y")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, ApproveScreen), what="ask")
        assert app.screen.task_id == held.id
        await pilot.press("n")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, TaskScreen), what="back")
        await pilot.press("x")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, RejectForm), what="form")
        assert app.screen.task_id == held.id
        await pilot.press("escape")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, TaskScreen), what="back")
        assert await _row(sql, held.id) == before
        assert f"Merge task #{held.id}" not in _git(
            agent_settings.workspace_path, "log", "--format=%s", "main"
        )


async def test_a_merge_that_conflicts_is_refused_and_the_task_still_waits(
    make_app, kernel, agent_settings, sql, helpers
) -> None:
    held = await _held(kernel, agent_settings)
    repo = agent_settings.workspace_path
    # someone changed the same file on main meanwhile
    (repo / "notes").mkdir()
    (repo / "notes" / "gate.md").write_text("# Another gate\n")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=p", "-c", "user.email=p@x", "commit", "-qm", "other notes")
    main_before = _git(repo, "rev-parse", "main").strip()
    app = make_app(settings=agent_settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await helpers.settle(pilot)
        await _select_approval(pilot, app, helpers, held.id)
        before = await _row(sql, held.id)
        await pilot.press("y")
        await helpers.wait_for(pilot, lambda: isinstance(app.screen, ApproveScreen), what="ask")
        await pilot.press("y")
        await helpers.wait_for(pilot, lambda: "could not merge" in _last_error(app), what="err")
        error = _last_error(app)
        assert error.startswith(f"task {held.id} still waits: could not merge")
        assert "conflicts in: notes/gate.md" in error and "\n" not in error
        assert await _row(sql, held.id) == before
        assert _git(repo, "rev-parse", "main").strip() == main_before
        assert held.id in app.query_one(Board).card_ids("approval")
