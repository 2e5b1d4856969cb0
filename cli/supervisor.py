"""`agentos start`: the local supervisor.

It ensures the database (the embedded server by default), migrates, competes for the
kernel's singleton duties (lease rescue, schedules), and runs child processes (the
agents, when there are any) restarting any that crash with backoff. Ctrl-C or SIGTERM
stops the children cleanly, then itself. The pid file AGENTOS_HOME/run/agentos.pid
is how `agentos stop` and `agentos status` find it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from agentos.kernel.db import Kernel
from agentos.kernel.duties import KernelDuties
from agentos.kernel.settings import Settings

log = logging.getLogger("agentos.supervisor")


@dataclass
class Child:
    """A supervised child process."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0


DEMO_GOAL = "Build a tiny greetings library"


def team(*, orchestrators: int, workers: int, reviewers: int, demo: bool) -> list[Child]:
    """One child process per agent: orchestrator, worker-1..N, reviewer-1..N."""
    env = {"AGENTOS_DEMO": "1"} if demo else {}

    def child(role: str, name: str) -> Child:
        return Child(
            name=name,
            env=env,
            argv=[
                sys.executable,
                "-m",
                "agentos.cli.main",
                "agent",
                "run",
                "--role",
                role,
                "--name",
                name,
            ],
        )

    out = [
        child("orchestrator", "orchestrator" if orchestrators == 1 else f"orchestrator-{i}")
        for i in range(1, orchestrators + 1)
    ]
    out += [child("worker", f"worker-{i}") for i in range(1, workers + 1)]
    out += [
        child("reviewer", "reviewer" if reviewers == 1 else f"reviewer-{i}")
        for i in range(1, reviewers + 1)
    ]
    return out


def pidfile(settings: Settings) -> Path:
    """Where the supervisor records itself."""
    return settings.run_dir / "agentos.pid"


def read_pidfile(settings: Settings) -> dict[str, object] | None:
    """The live supervisor's record, or None (a stale file is ignored)."""
    path = pidfile(settings)
    try:
        info = json.loads(path.read_text())
        os.kill(int(info["pid"]), 0)
    except (FileNotFoundError, ValueError, KeyError, ProcessLookupError, json.JSONDecodeError):
        return None
    except PermissionError:
        pass
    return dict(info)


class Supervisor:
    """Runs the kernel duties and the children until a signal arrives."""

    def __init__(self, settings: Settings, children: list[Child], *, demo: bool = False) -> None:
        self.settings = settings
        self.children = children
        self.demo = demo
        self._stop = asyncio.Event()

    async def run(self) -> int:
        """Start everything; return the exit code after a clean stop."""
        from agentos.cli.common import ensure_schema

        kernel = Kernel(self.settings)
        await kernel.open(min_size=1, max_size=4)
        try:
            applied = await ensure_schema(kernel)
            if applied:
                log.info("applied migrations %s", ", ".join(applied))
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._stop.set)
            self._write_pidfile(kernel.url)
            demo_watch: asyncio.Task[None] | None = None
            if self.demo:
                goal_id = await self._demo_goal(kernel)
                if goal_id is not None:
                    demo_watch = asyncio.create_task(self._watch_demo(kernel, goal_id))
            duties = KernelDuties(kernel, uuid.uuid4())
            duty_task = asyncio.create_task(duties.run(), name="agentos-duties")
            watchers = [
                asyncio.create_task(self._watch(c), name=f"child-{c.name}") for c in self.children
            ]
            log.info(
                "agentos is running (database %s, %d agent processes); Ctrl-C stops it",
                "embedded" if self.settings.uses_embedded else "external",
                len(self.children),
            )
            await self._stop.wait()
            log.info("stopping")
            for w in watchers:
                w.cancel()
            await asyncio.gather(*(self._terminate(c) for c in self.children))
            for w in watchers:
                with contextlib.suppress(asyncio.CancelledError):
                    await w
            duties.stop()
            await duty_task
            if demo_watch is not None:
                demo_watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await demo_watch
            return 0
        finally:
            await kernel.close()
            with contextlib.suppress(FileNotFoundError):
                pidfile(self.settings).unlink()

    async def _watch_demo(self, kernel: Kernel, goal_id: int) -> None:
        """Say once when the demo goal is done (woken by NOTIFY on task changes)."""
        from agentos.kernel import bus

        listener = await bus.Listener(kernel.url, [bus.TASK]).start()
        started = time.monotonic()
        try:
            while True:
                async with kernel.connection() as conn:
                    row = await (
                        await conn.execute(
                            "SELECT status::text AS status FROM agentos.tasks WHERE id = %s",
                            (goal_id,),
                        )
                    ).fetchone()
                if row and row["status"] in ("done", "failed", "blocked"):
                    log.info(
                        "DEMO: goal #%s is %s after %.0f s; the merged code is in %s "
                        "(Ctrl-C stops the team)",
                        goal_id,
                        row["status"],
                        time.monotonic() - started,
                        self.settings.home / "workspace",
                    )
                    return
                await listener.wait(5.0)
        finally:
            await listener.stop()

    async def _demo_goal(self, kernel: Kernel) -> int | None:
        from agentos.kernel import tasks

        log.info(
            "DEMO: the team runs on the built-in scripted model (agentos/scripted); "
            "no LLM provider is called and the costs shown are demo figures"
        )
        async with kernel.connection() as conn:
            existing = await (
                await conn.execute(
                    "SELECT id, status::text AS status FROM agentos.tasks "
                    "WHERE title = %s AND status <> 'cancelled' ORDER BY id DESC LIMIT 1",
                    (DEMO_GOAL,),
                )
            ).fetchone()
            if existing is None:
                goal = await tasks.create_task(
                    conn,
                    created_by="demo",
                    title=DEMO_GOAL,
                    role="orchestrator",
                    description="Two functions, hello() and goodbye(), each with a test.",
                    acceptance="both are merged into main and the tests pass",
                )
                log.info(
                    "DEMO: goal #%s created; watch it with `agentos log --follow` or `agentos tui`",
                    goal.id,
                )
                return goal.id
        return int(existing["id"]) if existing["status"] != "done" else None

    def _write_pidfile(self, url: str) -> None:
        self.settings.run_dir.mkdir(parents=True, exist_ok=True)
        info = {
            "pid": os.getpid(),
            "started": time.time(),
            "embedded": self.settings.uses_embedded,
            "children": [c.name for c in self.children],
            "demo": self.demo,
        }
        tmp = pidfile(self.settings).with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(pidfile(self.settings))

    async def _watch(self, child: Child) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            env = {**os.environ, **child.env}
            child.proc = await asyncio.create_subprocess_exec(*child.argv, env=env)
            child.started_at = time.monotonic()
            log.info("started %s (pid %s)", child.name, child.proc.pid)
            code = await child.proc.wait()
            if self._stop.is_set():
                return
            ran = time.monotonic() - child.started_at
            backoff = 1.0 if ran > 60 else min(backoff * 2, 60.0)
            child.restarts += 1
            log.warning("%s exited with %s; restarting in %.0fs", child.name, code, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=backoff)

    async def _terminate(self, child: Child) -> None:
        proc = child.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=20)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def detach(settings: Settings, argv: list[str]) -> int:
    """Start `agentos start` in the background; wait until it is up; return its pid."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    logfile = settings.run_dir / "agentos.log"
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agentos.cli.main", *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = read_pidfile(settings)
        if info and int(str(info["pid"])) == proc.pid:
            return proc.pid
        if proc.poll() is not None:
            tail = logfile.read_text(errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(f"agentos start exited with {proc.returncode}: {' '.join(tail)}")
        time.sleep(0.1)
    raise RuntimeError(f"agentos start did not come up in 60 s; see {logfile}")


def stop_supervisor(settings: Settings, timeout: float = 30) -> int | None:
    """SIGTERM the running supervisor and wait for it; returns its pid or None."""
    info = read_pidfile(settings)
    if info is None:
        return None
    pid = int(str(info["pid"]))
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return pid
