"""`agentos start`: the local supervisor.

It ensures the database (the embedded server by default), migrates, competes for the
kernel's singleton duties (lease rescue, schedules), and runs child processes (the
agents, when there are any) restarting any that crash with backoff. It watches the
embedded server and starts it again when it dies (`kill -9` of the postmaster, an OOM
kill): the agents' pools and listeners reconnect by themselves.

Ctrl-C or SIGTERM stops the children cleanly (SIGTERM, then SIGKILL after a grace
period), then whatever they left behind: a reviewer check or a shell tool runs in a
process group of its own, so the supervisor remembers every descendant of each child
and kills their process groups once the child is gone. Then it stops the embedded
server, unless told to keep it. The pid file AGENTOS_HOME/run/agentos.pid is how
`agentos stop` and `agentos status` find it.

With --demo it gives the team the demo goal and reports what really happened to it:
done with the merge commits the reviewer recorded, or blocked/failed with the reason.
The exit code is 0 only when the goal is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
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
from typing import Any

from agentos.kernel import errors
from agentos.kernel.db import Kernel
from agentos.kernel.duties import KernelDuties
from agentos.kernel.settings import Settings

log = logging.getLogger("agentos.supervisor")

# programs that belong to the embedded server: never killed as a child's leftovers
_SERVER_PROGRAMS = frozenset({"postgres", "pg_ctl", "postmaster"})


@dataclass
class Child:
    """A supervised child process."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    # the loopback port of the child's health server, whose /metrics the supervisor's
    # own /metrics includes (0: none)
    metrics_port: int = 0
    # every descendant seen (psutil.Process, which remembers its start time, so a
    # reused pid is never mistaken for it)
    descendants: dict[int, Any] = field(default_factory=dict)

    def remember_descendants(self) -> None:
        """Record the child's current descendants (their groups are killed on stop)."""
        if self.proc is None or self.proc.returncode is not None:
            return
        import psutil

        try:
            found = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            return
        for p in found:
            self.descendants.setdefault(p.pid, p)


@dataclass
class DemoOutcome:
    """What became of the demo goal."""

    goal_id: int
    status: str
    message: str

    @property
    def ok(self) -> bool:
        """The goal is done."""
        return self.status == "done"


def team(
    *,
    orchestrators: int,
    workers: int,
    reviewers: int,
    demo: bool,
    process_per_role: bool = False,
) -> list[Child]:
    """The team's child processes: by default one (`agentos agent team`) hosting every
    agent as a slot, so the local team pays for one Python runtime and one model layer;
    with `process_per_role`, one `agentos agent run` per role (an orchestrator per
    process), so a crash takes down only its role."""
    from agentos.agents.config import team_roles

    env = {"AGENTOS_DEMO": "1"} if demo else {}
    base = [sys.executable, "-m", "agentos.cli.main", "agent"]
    if not process_per_role:
        argv = [*base, "team", f"--orchestrators={orchestrators}", f"--workers={workers}",
                f"--reviewers={reviewers}"]  # fmt: skip
        return [Child(name="team", env=env, argv=argv)]
    out = []
    for role, name, slots in team_roles(
        orchestrators=orchestrators, workers=workers, reviewers=reviewers
    ):
        argv = [*base, "run", "--role", role]
        if slots > 1:
            argv += ["--concurrency", str(slots)]
        out.append(Child(name=name or role, env=env, argv=[*argv, "--name", name or role]))
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

    def __init__(
        self,
        settings: Settings,
        children: list[Child],
        *,
        demo: bool = False,
        keep_db: bool = False,
        grace: float = 20.0,
        db_check_interval: float = 0.5,
        db_restart_grace: float = 5.0,
        metrics_port: int = 0,
    ) -> None:
        self.settings = settings
        self.children = children
        self.demo = demo
        self.keep_db = keep_db
        self.grace = grace
        self.db_check_interval = db_check_interval
        self.db_restart_grace = db_restart_grace
        self.db_restarts = 0
        self.metrics_port = metrics_port
        self.metrics_server: asyncio.Server | None = None
        self.demo_outcome: DemoOutcome | None = None
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Ask run() to stop everything and return."""
        self._stop.set()

    async def run(self) -> int:
        """Start everything; return the exit code after a clean stop."""
        kernel = Kernel(self.settings)
        background: list[asyncio.Task[None]] = []
        watchers: list[asyncio.Task[None]] = []
        duties: KernelDuties | None = None
        duty_task: asyncio.Task[None] | None = None
        try:
            await kernel.open(min_size=1, max_size=4)
            if self.settings.uses_embedded:
                background.append(asyncio.create_task(self._watch_db(), name="agentos-db-watch"))
            applied = await kernel.ensure_schema()
            if applied:
                log.info("applied migrations %s", ", ".join(applied))
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._stop.set)
            self._write_pidfile(kernel.url)
            if self.demo:
                goal_id = await self._demo_goal(kernel)
                background.append(
                    asyncio.create_task(self._watch_demo(kernel, goal_id), name="agentos-demo")
                )
            duties = KernelDuties(kernel, uuid.uuid4())
            duty_task = asyncio.create_task(duties.run(), name="agentos-duties")
            if self.metrics_port:
                for c in self.children:
                    c.metrics_port = _free_loopback_port()
                    c.env = {**c.env, "AGENTOS_HEALTH_PORT": str(c.metrics_port)}
                self.metrics_server = await asyncio.start_server(
                    functools.partial(self._serve_metrics, kernel), "0.0.0.0", self.metrics_port
                )
                log.info("metrics on port %s (/metrics)", self.metrics_port)
            watchers = [
                asyncio.create_task(self._watch(c), name=f"child-{c.name}") for c in self.children
            ]
            background.append(asyncio.create_task(self._track(), name="agentos-track"))
            log.info(
                "agentos is running (database %s, %d agent process(es)); Ctrl-C stops it",
                "embedded" if self.settings.uses_embedded else "external",
                len(self.children),
            )
            await self._stop.wait()
            log.info("stopping")
        finally:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            if self.metrics_server is not None:
                self.metrics_server.close()
            for w in watchers:
                w.cancel()
            await asyncio.gather(*(self._terminate(c) for c in self.children))
            for w in watchers:
                with contextlib.suppress(asyncio.CancelledError):
                    await w
            if duties is not None and duty_task is not None:
                duties.stop()
                with contextlib.suppress(Exception):
                    await duty_task
            if self.demo:
                await self._report_demo(kernel)
            for b in background:
                b.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await b
            await kernel.close()
            with contextlib.suppress(FileNotFoundError):
                pidfile(self.settings).unlink()
            keep = self.keep_db or _take_marker(keep_db_marker(self.settings))
            if self.settings.uses_embedded and not keep:
                await asyncio.to_thread(self._stop_db)
        if self.demo:
            return 0 if self.demo_outcome is not None and self.demo_outcome.ok else 1
        return 0

    # ------------------------------------------------------------ the database --

    async def _watch_db(self) -> None:
        """Start the embedded server again whenever it is found dead.

        A crash (the postmaster killed: its pid file is left behind) is repaired at the
        next check. A server that was shut down cleanly (no pid file) may be in the middle
        of `pg_ctl restart` by an operator: it gets `db_restart_grace` seconds, and is
        left alone while a pg_ctl runs on its data directory, so the two never race.
        """
        from agentos.kernel import embedded

        pgdata = self.settings.pgdata
        delay = 0.5
        down_since: float | None = None
        crashed = False  # sticky until the server is back (a failed start removes the file)
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.db_check_interval)
            if self._stop.is_set() or embedded.running_server(pgdata) is not None:
                down_since, crashed = None, False
                continue
            now = time.monotonic()
            down_since = now if down_since is None else down_since
            crashed = crashed or (pgdata / "postmaster.pid").exists()
            if _pg_ctl_running(pgdata) or (
                not crashed and now - down_since < self.db_restart_grace
            ):
                continue
            log.warning(
                "the embedded database is not running (%s); starting it again",
                "it crashed" if crashed else f"stopped for {now - down_since:.0f} s",
                extra={"action": "db.restart"},
            )
            started = time.monotonic()
            try:
                await asyncio.to_thread(embedded.ensure_running, pgdata)
            except Exception as exc:
                log.error(
                    "could not start the embedded database: %s; trying again in %.0f s",
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 0.5
            down_since, crashed = None, False
            self.db_restarts += 1
            _restart_counters()[1].inc()
            log.warning(
                "the embedded database is running again (started in %.1f s)",
                time.monotonic() - started,
                extra={"action": "db.restarted"},
            )

    def _stop_db(self) -> None:
        from agentos.kernel import embedded

        try:
            if embedded.stop(self.settings.pgdata):
                log.info("stopped the embedded database (%s)", self.settings.pgdata)
        except Exception as exc:
            log.error("could not stop the embedded database: %s", exc)

    # ------------------------------------------------------------------ the demo --

    async def _watch_demo(self, kernel: Kernel, goal_id: int) -> None:
        """Report the demo goal each time it reaches done, blocked or failed (NOTIFY-woken)."""
        from agentos.kernel import bus

        listener = await kernel.subscribe([bus.TASK])
        wake = listener.wake([bus.TASK])
        started = time.monotonic()
        reported: str | None = None
        try:
            while True:
                try:
                    outcome = await self._demo_outcome(kernel, goal_id, time.monotonic() - started)
                except errors.KernelError as exc:
                    log.debug("demo status unavailable: %s", exc)
                else:
                    self.demo_outcome = outcome
                    if outcome.status in ("done", "failed", "blocked"):
                        if outcome.status != reported:
                            reported = outcome.status
                            log.info("%s (Ctrl-C stops the team)", outcome.message)
                    else:
                        reported = None
                await wake.wait(5.0)
        finally:
            listener.drop(wake)

    async def _report_demo(self, kernel: Kernel) -> None:
        """On stop: read the goal one last time and say what became of it."""
        goal = self.demo_outcome.goal_id if self.demo_outcome is not None else None
        if goal is None:
            return
        with contextlib.suppress(errors.KernelError, RuntimeError):
            self.demo_outcome = await self._demo_outcome(kernel, goal, None)
        out = self.demo_outcome
        if out is not None and out.status not in ("done", "failed", "blocked"):
            log.warning("DEMO: stopped before goal #%s finished (it is %s)", goal, out.status)

    async def _demo_outcome(
        self, kernel: Kernel, goal_id: int, elapsed: float | None
    ) -> DemoOutcome:
        """What the database says about the goal and its subtasks (the merges recorded)."""
        from agentos.kernel import tasks

        async with kernel.connection() as conn:
            goal = await tasks.get_task(conn, goal_id)
            subs = await tasks.list_tasks(conn, parent_id=goal_id)
        after = f" after {elapsed:.0f} s" if elapsed is not None else ""
        merged = [(t, str(t.metadata["merged"])) for t in subs if t.metadata.get("merged")]
        if goal.status == "done":
            if merged:
                commits = ", ".join(f"#{t.id} {t.title!r} as {c[:12]}" for t, c in merged)
                message = (
                    f"DEMO: goal #{goal_id} is done{after}: {len(merged)} of {len(subs)} "
                    f"subtasks merged into main of {self._workspace()} ({commits})"
                )
            else:
                message = f"DEMO: goal #{goal_id} is done{after}, but no merge was recorded"
        elif goal.status in ("blocked", "failed"):
            why = [
                f"#{t.id} {t.status}: {t.error or 'no reason recorded'}"
                for t in subs
                if t.status in ("blocked", "failed")
            ]
            message = (
                f"DEMO: goal #{goal_id} is {goal.status}{after}: "
                f"{goal.error or 'no reason recorded'}"
                + (f"; subtasks {'; '.join(why)}" if why else "")
                + f"; {len(merged)} of {len(subs)} subtasks merged"
            )
        else:
            message = f"DEMO: goal #{goal_id} is {goal.status}"
        return DemoOutcome(goal_id=goal_id, status=str(goal.status), message=message)

    def _workspace(self) -> Path:
        from agentos.agents.config import AgentSettings

        return AgentSettings(home=self.settings.home).workspace_path

    async def _demo_goal(self, kernel: Kernel) -> int:
        from agentos.agents.demo import DEMO_GOAL as demo_goal
        from agentos.kernel import tasks

        log.info(
            "DEMO: the team runs on the built-in scripted model (agentos/scripted); "
            "no LLM provider is called and the costs shown are demo figures"
        )
        async with kernel.connection() as conn:
            existing = await tasks.find_by_title(conn, demo_goal)
            if existing is not None:
                return existing
            goal = await tasks.create_task(
                conn,
                created_by="demo",
                title=demo_goal,
                role="orchestrator",
                description="Two functions, hello() and goodbye(), each with a test.",
                acceptance="both are merged into main and the tests pass",
            )
        log.info(
            "DEMO: goal #%s created; watch it with `agentos log --follow` or `agentos tui`",
            goal.id,
        )
        self.demo_outcome = DemoOutcome(goal.id, str(goal.status), "")
        return goal.id

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

    # -------------------------------------------------------------- /metrics --

    async def _serve_metrics(
        self, kernel: Kernel, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """One HTTP request: /metrics is the supervisor's own metrics (its kernel duties,
        the queue depth, restarts) and each child's, every sample labelled with the
        process it came from; /livez answers ok."""
        try:
            line = (await reader.readline()).decode(errors="replace")
            path = line.split(" ")[1] if " " in line else "/"
            if path.startswith("/metrics"):
                body, content_type = await self.metrics_text(kernel)
                status = b"200 OK"
            elif path.startswith("/livez"):
                body, content_type, status = b"ok\n", "text/plain", b"200 OK"
            else:
                body, content_type, status = b"not found\n", "text/plain", b"404 Not Found"
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: " + content_type.encode()
                + b"\r\nContent-Length: " + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n" + body
            )  # fmt: skip
            await writer.drain()
        except (ConnectionError, OSError) as exc:
            log.debug("metrics request failed: %s", exc)
        finally:
            writer.close()

    async def metrics_text(self, kernel: Kernel) -> tuple[bytes, str]:
        """The merged exposition text and its content type."""
        from agentos.kernel import metrics as kmetrics
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.parser import text_string_to_metric_families

        _restart_counters()  # present (at zero) from the first scrape
        await kmetrics.refresh(kernel)
        own, content_type = kmetrics.render()
        sources = [("supervisor", own.decode())]
        for c in self.children:
            if c.metrics_port and c.proc is not None and c.proc.returncode is None:
                text = await _scrape(c.metrics_port)
                if text is not None:
                    sources.append((c.name, text))
        merged: dict[str, Any] = {}
        for process, text in sources:
            for fam in text_string_to_metric_families(text):
                if process != "supervisor" and fam.name in SUPERVISOR_ONLY:
                    continue  # read from the database: served once, by the supervisor
                out = merged.setdefault(fam.name, _family_like(fam))
                for s in fam.samples:
                    out.samples.append(s._replace(labels={**s.labels, "process": process}))
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Static(list(merged.values())))
        return generate_latest(registry), content_type

    # ------------------------------------------------------------- the children --

    async def _track(self, every: float = 2.0) -> None:
        """Remember each child's descendants now and then (a crash orphans them)."""
        while not self._stop.is_set():
            for c in self.children:
                c.remember_descendants()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=every)

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
            await kill_leftovers(child)
            ran = time.monotonic() - child.started_at
            backoff = 1.0 if ran > 60 else min(backoff * 2, 60.0)
            child.restarts += 1
            _restart_counters()[0].labels(child.name).inc()
            log.warning("%s exited with %s; restarting in %.0fs", child.name, code, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=backoff)

    async def _terminate(self, child: Child) -> None:
        proc = child.proc
        if proc is not None and proc.returncode is None:
            child.remember_descendants()
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout=self.grace)
            except TimeoutError:
                log.warning("%s did not stop in %.0f s; killing it", child.name, self.grace)
                child.remember_descendants()
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        await kill_leftovers(child)


# Families the supervisor serves for the whole team (read from the database at scrape
# time); the children's copies of them are left out of the merged /metrics.
SUPERVISOR_ONLY = frozenset({"agentos_queue_depth"})


@functools.cache
def _restart_counters() -> tuple[Any, Any]:
    """The supervisor's own counters (made on first use: `agentos status` and `stop`
    import this module and need no metrics)."""
    from agentos.kernel.metrics import REGISTRY
    from prometheus_client import Counter

    child = Counter(
        "agentos_child_restarts",
        "Agent processes of `agentos start` that exited and were started again",
        ["child"],
        registry=REGISTRY,
    )
    db = Counter(
        "agentos_database_restarts",
        "Times `agentos start` found the embedded server dead and started it again",
        registry=REGISTRY,
    )
    return child, db


class _Static:
    """A collector of already-built metric families (the merged /metrics)."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> list[Any]:
        return self.families


def _family_like(fam: Any) -> Any:
    from prometheus_client.core import Metric

    return Metric(fam.name, fam.documentation, fam.type, fam.unit)


def _free_loopback_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _scrape(port: int, timeout: float = 5.0) -> str | None:
    """A child's /metrics text, or None when it does not answer."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200") and not head.startswith(b"HTTP/1.0 200"):
        return None
    return body.decode(errors="replace")


def _take_marker(path: Path) -> bool:
    """True (and the file removed) when `agentos stop --keep-db` left the marker for us."""
    try:
        pid = int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return False
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return pid == os.getpid()


def _pg_ctl_running(pgdata: Path) -> bool:
    """True while a pg_ctl (start, stop, restart) works on this data directory."""
    import psutil

    target = str(pgdata.expanduser().resolve())
    for p in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if p.info["name"] == "pg_ctl" and target in (p.info["cmdline"] or []):
                return True
    return False


async def kill_leftovers(child: Child, grace: float = 3.0) -> list[int]:
    """Kill what a child left running (checks, shells in their own process groups).

    SIGTERM to each remembered descendant's process group (or the process itself when
    it shares ours), SIGKILL after grace seconds; returns the pids that were alive.
    """
    import psutil

    own_group = os.getpgrp()
    alive = []
    for p in child.descendants.values():
        try:
            if (
                p.is_running()
                and p.status() != psutil.STATUS_ZOMBIE
                and p.name() not in _SERVER_PROGRAMS
            ):
                alive.append(p)
        except psutil.Error:
            continue
    child.descendants.clear()
    if not alive:
        return []

    def signal_all(sig: int) -> None:
        for p in alive:
            with contextlib.suppress(psutil.Error, OSError):
                if not p.is_running():
                    continue
                group = os.getpgid(p.pid)
                if group != own_group and group > 1:
                    os.killpg(group, sig)
                else:
                    p.send_signal(sig)

    log.info(
        "%s left %d process(es) running; stopping them: %s",
        child.name,
        len(alive),
        ", ".join(str(p.pid) for p in alive),
    )
    signal_all(signal.SIGTERM)
    _, still = await asyncio.to_thread(psutil.wait_procs, alive, grace)
    if still:
        signal_all(signal.SIGKILL)
        await asyncio.to_thread(psutil.wait_procs, still, grace)
    return [p.pid for p in alive]


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


def keep_db_marker(settings: Settings) -> Path:
    """A file that tells a stopping supervisor to leave the embedded server running."""
    return settings.run_dir / "keep-db"


def stop_supervisor(
    settings: Settings, timeout: float = 30, *, keep_db: bool = False
) -> int | None:
    """SIGTERM the running supervisor and wait for it; returns its pid or None.

    With keep_db the supervisor leaves the embedded server running (`agentos stop
    --keep-db`); otherwise it stops it, as on Ctrl-C.
    """
    info = read_pidfile(settings)
    if info is None:
        return None
    pid = int(str(info["pid"]))
    if keep_db:
        keep_db_marker(settings).write_text(str(pid))
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
