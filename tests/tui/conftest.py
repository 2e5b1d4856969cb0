"""Fixtures for mission control: a pinned clock, a seeded team, and waiting helpers.

Every test gets its own database (tests/conftest.py). The App runs headless through
`App.run_test()`; its service thread talks to the same database, and the tests write
"from another connection" through the `kernel` fixture, as an agent or psql would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from agentos.kernel.db import Kernel
from agentos.kernel.settings import Settings
from agentos.tui.app import MissionControl
from agentos.tui.clock import fixed_clock
from rich.console import Console
from textual.app import App
from textual.pilot import Pilot

PINNED = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)
SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE_ENV = "AGENTOS_UPDATE_SNAPSHOTS"


@pytest.fixture
def make_app(settings: Settings, db_url: str) -> Callable[..., MissionControl]:
    """Build a MissionControl on this test's database with the clock pinned."""

    def make(**kw: Any) -> MissionControl:
        options = {
            "min_gap": 0.0,
            "slow_gap": 0.0,
            "check_interval": 1.0,
            **kw.pop("service_options", {}),
        }
        return MissionControl(
            kw.pop("settings", settings),  # AgentSettings when a test needs a workspace
            url=db_url,
            clock=fixed_clock(PINNED),
            actor="alice",
            tick_interval=0,
            service_options=options,
            **kw,
        )

    return make


async def wait_for(
    pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 10.0, what: str = ""
) -> None:
    """Let the app run until condition() holds (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.01)


async def settle(pilot: Pilot[Any], timeout: float = 10.0) -> None:
    """Wait until the service has nothing to read and the app rendered what it sent."""
    app = pilot.app
    assert isinstance(app, MissionControl)
    await wait_for(pilot, lambda: app.service.loads > 0, timeout, "the first snapshot")
    stable = 0
    deadline = time.monotonic() + timeout
    while stable < 3:  # settled on three consecutive looks: NOTIFYs may still be in flight
        if time.monotonic() > deadline:
            raise AssertionError("the app did not settle")
        await pilot.pause(0.02)
        stable = stable + 1 if app.settled() else 0
    await pilot.pause()


def screen_text(app: App[Any]) -> str:
    """The screen as plain text (what the snapshot files hold)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    lines = console.export_text(styles=False).splitlines()
    return "\n".join(line.rstrip() for line in lines) + "\n"


def compare_snapshot(app: App[Any], name: str) -> None:
    """Compare the screen with snapshots/<name>.txt; AGENTOS_UPDATE_SNAPSHOTS=1 rewrites it.

    The SVG beside it (<name>.svg) is for people (and the README); only the text is compared,
    so a Textual upgrade that changes colours does not fail the test, but one that moves
    a character does.
    """
    text = screen_text(app)
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get(UPDATE_ENV) or not path.exists():
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        (SNAPSHOTS / f"{name}.svg").write_text(
            app.export_screenshot(title="agentos tui"), encoding="utf-8"
        )
        if not os.environ.get(UPDATE_ENV):
            pytest.fail(f"wrote the new snapshot {path.name}; check it and commit it")
        return
    expected = path.read_text(encoding="utf-8")
    assert text == expected, (
        f"screen differs from {path.name} (set {UPDATE_ENV}=1 to accept):\n{text}"
    )


# ------------------------------------------------------------------ the seed --

SEED_SQL = """
INSERT INTO agentos.agent_sessions (id, role, host, pid, agents, status, started_at, heartbeat_at)
VALUES
  ('00000000-0000-0000-0000-000000000001', 'orchestrator', 'box', 101, '{planner}', 'running',
   %(t0)s - interval '2 hours', %(t0)s - interval '4 seconds'),
  ('00000000-0000-0000-0000-000000000002', 'worker', 'box', 102, '{coder-1,coder-2}', 'running',
   %(t0)s - interval '2 hours', %(t0)s - interval '3 seconds'),
  ('00000000-0000-0000-0000-000000000003', 'reviewer', 'box', 103, '{judge}', 'running',
   %(t0)s - interval '2 hours', %(t0)s - interval '6 seconds'),
  ('00000000-0000-0000-0000-000000000004', 'worker', 'box', 104, '{coder-3}', 'running',
   %(t0)s - interval '2 hours', %(t0)s - interval '10 minutes');

INSERT INTO agentos.agents (name, role, status, model, session_id, last_heartbeat)
VALUES
  ('planner', 'orchestrator', 'idle', 'gpt-4o', '00000000-0000-0000-0000-000000000001',
   %(t0)s - interval '4 seconds'),
  ('coder-1', 'worker', 'idle', 'gpt-4o-mini', '00000000-0000-0000-0000-000000000002',
   %(t0)s - interval '3 seconds'),
  ('coder-2', 'worker', 'idle', 'gpt-4o-mini', '00000000-0000-0000-0000-000000000002',
   %(t0)s - interval '3 seconds'),
  ('judge', 'reviewer', 'idle', 'gpt-4o', '00000000-0000-0000-0000-000000000003',
   %(t0)s - interval '6 seconds'),
  ('coder-3', 'worker', 'idle', 'gpt-4o-mini', '00000000-0000-0000-0000-000000000004',
   %(t0)s - interval '10 minutes');

INSERT INTO agentos.tasks (id, title, description, acceptance, priority, role, assignee,
                           created_by, parent_id, created_at)
VALUES
  (1, 'Write the changelog for 0.2', 'Summarise the merged work since 0.1.', '', 0,
   'worker', NULL, 'alice', NULL, %(t0)s - interval '50 minutes'),
  (2, 'Fix the flaky test in test_dispatch', 'It fails one run in ten on CI.',
   'Passes 200 runs in a row.', 5, 'worker', NULL, 'alice', NULL, %(t0)s - interval '45 minutes'),
  (3, 'Add retries to the HTTP client',
   'Transient 5xx and connection resets should be retried with backoff.',
   'A test shows three retries, then the error.', 0, 'worker', NULL, 'planner', NULL,
   %(t0)s - interval '40 minutes'),
  (4, 'Document the budget rules', 'Explain reserve and settle.', '', 0, 'worker', NULL,
   'planner', NULL, %(t0)s - interval '35 minutes'),
  (5, 'Set up CI for the docs', '', '', 0, 'worker', NULL, 'alice', NULL,
   %(t0)s - interval '3 hours'),
  (6, 'Upgrade psycopg to 3.3', 'Bump and run the suite.', '', 0, 'worker', NULL, 'planner',
   NULL, %(t0)s - interval '2 hours'),
  (7, 'Port the scaler to KEDA 2.16', '', '', 0, 'worker', NULL, 'planner', NULL,
   %(t0)s - interval '90 minutes'),
  (8, 'Triage open issues', '', '', 0, 'worker', 'coder-2', 'alice', NULL,
   %(t0)s - interval '20 minutes'),
  (9, 'Rename the settings module', '', '', 0, 'worker', NULL, 'alice', NULL,
   %(t0)s - interval '25 minutes'),
  (10, 'Write tests for the retries', '', '', 0, 'worker', NULL, 'planner', 3,
   %(t0)s - interval '15 minutes');
SELECT setval(pg_get_serial_sequence('agentos.tasks', 'id'), 10);

INSERT INTO agentos.task_dependencies (task_id, depends_on_id) VALUES (10, 3), (1, 5);

-- move tasks along the state machine (the triggers check and audit every step)
SELECT set_config('agentos.actor', 'coder-1', false);
UPDATE agentos.tasks SET status = 'in_progress', lease_agent = 'coder-1',
       lease_session = '00000000-0000-0000-0000-000000000002',
       lease_token = gen_random_uuid(), lease_expires_at = now() + interval '1 hour',
       attempts = 1, branch = 'agentos/task-3'
 WHERE id = 3;
UPDATE agentos.agents SET status = 'working', current_task_id = 3 WHERE name = 'coder-1';
SELECT set_config('agentos.actor', '', false);
SELECT agentos.transition_task(4, 'in_progress', 'coder-2');
SELECT agentos.transition_task(4, 'review', 'coder-2');
UPDATE agentos.tasks SET branch = 'agentos/task-4' WHERE id = 4;
SELECT agentos.transition_task(5, 'in_progress', 'coder-1');
SELECT agentos.transition_task(5, 'done', 'judge', 'approved and merged');
SELECT agentos.transition_task(6, 'in_progress', 'coder-2');
SELECT agentos.transition_task(6, 'blocked', 'coder-2', 'task budget $0.50 exhausted');
UPDATE agentos.tasks SET budget_usd = 0.50 WHERE id = 6;
SELECT agentos.transition_task(7, 'failed', 'kernel', 'lease of coder-3 expired (attempt 3 of 3)');
SELECT agentos.transition_task(9, 'cancelled', 'alice', 'not needed');

INSERT INTO agentos.llm_calls (created_at, agent, role, task_id, model, prompt_tokens,
                               completion_tokens, cost_usd, latency_ms, outcome)
VALUES
  (%(t0)s - interval '9 minutes', 'coder-1', 'worker', 3, 'gpt-4o-mini', 1200, 300, 0.0123, 900, 'ok'),
  (%(t0)s - interval '8 minutes', 'coder-1', 'worker', 3, 'gpt-4o-mini', 2400, 500, 0.0345, 1100, 'ok'),
  (%(t0)s - interval '30 minutes', 'coder-2', 'worker', 6, 'gpt-4o-mini', 9000, 2000, 0.5, 4000, 'ok'),
  (%(t0)s - interval '5 minutes', 'judge', 'reviewer', 4, 'gpt-4o', 3000, 400, 0.02, 2000, 'ok');

INSERT INTO agentos.steps (task_id, stage, seq, agent, kind, tool_name, tool_call_id, content)
VALUES
  (3, 'work', 0, 'coder-1', 'system', NULL, NULL,
   '{"text": "You are coder-1, a worker of AgentOS."}'),
  (3, 'work', 1, 'coder-1', 'user', NULL, NULL,
   '{"text": "Add retries to the HTTP client. Acceptance: a test shows three retries.", "round": "1"}'),
  (3, 'work', 2, 'coder-1', 'llm', NULL, NULL,
   '{"content": "I will read the client first.", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": "{\\"path\\": \\"src/http.py\\"}"}}], "model": "gpt-4o-mini", "prompt_tokens": 1200, "completion_tokens": 300, "cost_usd": 0.0123}'),
  (3, 'work', 3, 'coder-1', 'tool_call', 'read_file', 'c1', '{"arguments": {"path": "src/http.py"}}'),
  (3, 'work', 4, 'coder-1', 'tool_result', 'read_file', 'c1',
   '{"ok": true, "output": "def get(url):\\n    return session.get(url)"}'),
  (3, 'work', 5, 'coder-1', 'llm', NULL, NULL,
   '{"content": "The client has no retry loop; I will wrap get() with backoff.", "tool_calls": [], "model": "gpt-4o-mini", "prompt_tokens": 2400, "completion_tokens": 500, "cost_usd": 0.0345}'),
  (3, 'work', 6, 'coder-1', 'note', NULL, NULL, '{"text": "tests pass locally"}');

INSERT INTO agentos.messages (task_id, from_agent, to_agent, kind, body)
VALUES (3, 'alice', 'coder-1', 'comment', 'Please keep the public API unchanged.'),
       (3, 'coder-1', 'alice', 'answer', 'Will do: only the internals change.');

-- pin every timestamp a screen shows (triggers off: they would stamp now())
SET session_replication_role = replica;
UPDATE agentos.tasks SET updated_at = created_at + interval '1 minute',
       started_at = CASE WHEN status IN ('in_progress', 'review', 'done', 'blocked')
                         THEN created_at + interval '1 minute' END,
       completed_at = CASE WHEN status IN ('done', 'failed', 'cancelled')
                           THEN %(t0)s - interval '10 minutes' + id * interval '1 second' END;
UPDATE agentos.activities SET created_at = %(t0)s - interval '1 minute' * (50 - id);
UPDATE agentos.steps SET created_at = %(t0)s - interval '10 minutes' + seq * interval '30 seconds';
UPDATE agentos.messages SET created_at = %(t0)s - interval '7 minutes' + id * interval '1 minute';
SET session_replication_role = origin;
"""


async def seed_team(kernel: Kernel, now: dt.datetime = PINNED) -> None:
    """A small team mid-flight: five agents (one dead), a task in every column, a transcript."""
    async with kernel.connection() as conn:
        for statement in _statements(SEED_SQL):
            await conn.execute(statement, {"t0": now} if "%(t0)s" in statement else None)


def _statements(sql: str) -> list[str]:
    out, buf = [], []
    for line in sql.splitlines():
        if line.strip().startswith("--") and not buf:
            continue
        buf.append(line)
        if line.rstrip().endswith(";"):
            out.append("\n".join(buf).strip().rstrip(";"))
            buf = []
    return [s for s in out if s]


@pytest.fixture
def seeded(kernel: Kernel) -> Callable[[], Awaitable[None]]:
    """Call `await seeded()` to seed the team into this test's database."""
    return lambda: seed_team(kernel)


async def run_sql(kernel: Kernel, sql: str, params: Any = None) -> list[dict[str, Any]]:
    """One statement from another connection; returns its rows (if any)."""
    async with kernel.connection() as conn:
        cur = await conn.execute(sql, params)
        return await cur.fetchall() if cur.description else []


@pytest.fixture
def sql(kernel: Kernel) -> Callable[..., Awaitable[list[dict[str, Any]]]]:
    """`await sql("SELECT ...", params)` on this test's database (another connection)."""
    return lambda statement, params=None: run_sql(kernel, statement, params)


@pytest.fixture
def helpers() -> Any:
    """wait_for, settle, screen_text and compare_snapshot, for the test modules."""

    class H:
        pass

    h = H()
    h.wait_for = wait_for  # type: ignore[attr-defined]
    h.settle = settle  # type: ignore[attr-defined]
    h.screen_text = screen_text  # type: ignore[attr-defined]
    h.compare_snapshot = compare_snapshot  # type: ignore[attr-defined]
    h.pinned = PINNED  # type: ignore[attr-defined]
    h.update_env = UPDATE_ENV  # type: ignore[attr-defined]
    h.sleep = asyncio.sleep  # type: ignore[attr-defined]
    return h
