"""The local supervisor restarts crashed children with backoff and stops them cleanly."""

from __future__ import annotations

import asyncio
import sys

from agentos.cli.supervisor import Child, Supervisor, team
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


def test_the_team_is_one_process_per_agent() -> None:
    kids = team(orchestrators=1, workers=2, reviewers=1, demo=True)
    assert [k.name for k in kids] == ["orchestrator", "worker-1", "worker-2", "reviewer"]
    assert all(k.env == {"AGENTOS_DEMO": "1"} for k in kids)
    assert kids[1].argv[-4:] == ["--role", "worker", "--name", "worker-1"]
