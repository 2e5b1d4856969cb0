"""`agentos agent run`: one process hosting N agents of one role.

It registers the agents, claims work through the kernel (AgentHost), runs the durable
loop for each claimed task, answers messages, keeps its role's heartbeat schedule,
takes part in the kernel's singleton duties (lease rescue, schedules) under leader
election, serves /livez and /readyz for Kubernetes, and on SIGTERM/Ctrl-C releases
the leases it holds. A leader_only role (the orchestrator) claims only while it leads
(the duty named after the role), so only one orchestrator plans at a time however many
run. `AgentProcess` is the one place that wires all of this together.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentos.agents import checks, toolbox
from agentos.agents import metrics as agent_metrics
from agentos.agents.config import (
    AgentSettings,
    RoleConfig,
    available_roles,
    load_role,
    with_agent_model,
)
from agentos.agents.conversation import Answerer
from agentos.agents.llm import LLMClient, ensure_litellm
from agentos.agents.loop import Loop, Stage, StageOutcome
from agentos.agents.workspace import Workspace, branch_name
from agentos.kernel import bus, errors, roster, schedules, tasks
from agentos.kernel import memory as kmemory
from agentos.kernel import messages as kmessages
from agentos.kernel import metrics as kmetrics
from agentos.kernel.db import Kernel
from agentos.kernel.duties import KernelDuties
from agentos.kernel.leader import Leadership
from agentos.kernel.models import Task, TaskStatus
from agentos.kernel.runtime import AgentHost, Work, host_pool_size
from agentos.tools.sandbox import ProcessStartError, SandboxUnavailable, sandbox_status
from agentos.tools.shell import run_in_worktree

log = logging.getLogger("agentos.agents")


def default_names(role: str, name: str | None, concurrency: int) -> list[str]:
    """Agent names for a process: NAME, or NAME-1..N; default role-<host>."""
    base = (
        name
        or f"{role}-{re.sub(r'[^a-z0-9-]+', '-', socket.gethostname().lower())[:30].strip('-')}"
    )
    return [base] if concurrency == 1 else [f"{base}-{i}" for i in range(1, concurrency + 1)]


class AgentRuntime:
    """Turns claimed work into loop runs."""

    def __init__(
        self, kernel: Kernel, settings: AgentSettings, role: RoleConfig, workspace: Workspace
    ) -> None:
        self.kernel = kernel
        self.settings = settings
        self.role = role
        self.workspace = workspace
        self.llm = LLMClient(kernel, settings)
        self.tools, unavailable = toolbox.builtin_tools(role)
        for name, why in unavailable.items():
            log.warning("%s: tool %s is unavailable: %s", role.name, name, why)
        self.stops: dict[int, asyncio.Event] = {}
        self.answerer = Answerer(kernel, role, self.llm, settings)
        self.mail: dict[str, asyncio.Event] = {}  # agents at work: set when mail wakes them
        self.browser: Any = None
        if any(t.name.startswith("browser_") for t in self.tools):
            from agentos.tools.browser import BrowserPool

            self.browser = BrowserPool()  # one context per task, closed when its work ends

    def on_notify(self, channel: str, payload: str) -> None:
        """Stop a loop between steps when its task is cancelled (NOTIFY agentos_task); tell
        an agent at work that a message woke it (its work channel)."""
        if channel.startswith(bus.work_channel("agent:")):
            wake = self.mail.get(channel.removeprefix(bus.work_channel("agent:")))
            if wake is not None:
                wake.set()
            return
        if channel != bus.TASK:
            return
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if (
            data.get("status") in ("cancelled", "done", "failed", "blocked")
            and data.get("id") in self.stops
        ):
            self.stops[data["id"]].set()

    async def handle(self, kernel: Kernel, work: Work) -> None:
        """AgentHost handler."""
        if work.task is not None:
            await self.handle_task(work)
        elif work.activation is not None:
            await self.handle_activation(work)

    async def handle_task(self, work: Work) -> None:
        task = work.task
        assert task is not None
        started = time.monotonic()
        stop = asyncio.Event()
        self.stops[task.id] = stop

        async def watch_lost() -> None:
            await work.lost.wait()
            stop.set()

        watcher = asyncio.create_task(watch_lost())
        extras_stack = contextlib.AsyncExitStack()  # the stage's MCP servers (agents/toolbox.py)
        # the holder answers its task's questions (and its mail) between the task's steps
        wake = self.mail.setdefault(work.agent, asyncio.Event())
        answering = asyncio.create_task(self.answerer.watch(work.agent, wake))
        try:
            stage, round_key, tvars, role = await self._stage_for(task, work.agent)
            worktree = await self.workspace.worktree(task.id)
            refs_before = await self.workspace.refs_snapshot() if stage == "work" else None
            if stage == "review":
                check = await self._run_check(worktree)
                if check.outcome in ("cannot_run", "timed_out"):
                    await self._block_for_check(work, task, check)
                    return
                tvars["check"] = check.as_vars()
            try:
                extras = await toolbox.open_stage(
                    extras_stack, self.kernel, role, agent=work.agent, task=task,
                    stage=stage, worktree=worktree,
                )  # fmt: skip
            except toolbox.McpUnavailable as exc:
                await self._block_for_tools(work, task, stage, str(exc))
                return
            st = Stage(
                kernel=self.kernel,
                settings=self.settings,
                role=role,
                agent=work.agent,
                task=task,
                stage=stage,
                round_key=round_key,
                worktree=worktree,
                llm=self.llm,
                tools=[*self.tools, *extras.tools],
                template_vars={**tvars, **extras.template_vars},
                workspace=self.workspace,
                stop=stop,
                tool_extra={
                    "base_branch": self.workspace.base_branch,
                    **({"browser_pool": self.browser} if self.browser else {}),
                    **extras.tool_extra,
                },
                refs_before=refs_before,
            )
            if role.executor != "builtin" and stage in ("work", "review"):
                from agentos.agents import executors

                run = executors.run_work_stage if stage == "work" else executors.run_review_stage
                outcome = await run(st)
            else:
                outcome = await Loop(st).run()
            if refs_before is not None and outcome.kind != "submit_for_review":
                undone = await self.workspace.undo_foreign_moves(task.id, refs_before)
                if undone:
                    outcome = await self._block_for_refs(work, task, undone)
            if outcome.kind == "cancelled" and not work.lost.is_set():
                await self._release_if_still_held(task, "stopped")
            agent_metrics.STAGE_OUTCOMES.labels(self.role.name, outcome.kind).inc()
            log.info(
                "%s: task #%s %s: %s",
                work.agent,
                task.id,
                outcome.kind,
                outcome.detail[:200],
                extra={
                    "action": f"agent.{outcome.kind}",
                    "task": task.id,
                    "agent": work.agent,
                    "role": self.role.name,
                    "attempt": task.attempts,
                    "duration_ms": round((time.monotonic() - started) * 1000),
                },
            )
        finally:
            with contextlib.suppress(Exception):
                await extras_stack.aclose()
            watcher.cancel()
            answering.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await answering
            self.mail.pop(work.agent, None)
            self.stops.pop(task.id, None)
            if self.browser is not None:
                with contextlib.suppress(Exception):
                    await self.browser.close_task(task.id)

    async def _block_for_tools(self, work: Work, task: Task, stage: str, reason: str) -> None:
        """An MCP server that cannot start, or a secret that is not set, is the role's
        configuration: block the task with the reason (retry once it is fixed)."""
        log.warning("%s: task #%s: %s", work.agent, task.id, reason,
                    extra={"action": "agent.tools_unavailable", "task": task.id})  # fmt: skip
        with contextlib.suppress(errors.StaleLease, errors.BadInput):
            async with self.kernel.connection() as conn:
                if stage == "review":
                    await tasks.block_in_review(conn, task, actor=work.agent, reason=reason)
                else:
                    await tasks.transition(
                        conn, task.id, TaskStatus.blocked, actor=work.agent,
                        token=task.lease_token, error=reason[:2000], reason=reason[:2000],
                    )  # fmt: skip

    async def _block_for_check(self, work: Work, task: Task, check: checks.CheckResult) -> None:
        """A check that cannot run is not the worker's fault: block for a person."""
        what = "cannot run" if check.outcome == "cannot_run" else "timed out"
        reason = f"the reviewer's check `{check.command}` {what}: {check.reason}"
        log.warning(
            "%s: task #%s: %s",
            work.agent,
            task.id,
            reason,
            extra={"action": "agent.check_unusable", "task": task.id},
        )
        with contextlib.suppress(errors.StaleLease):
            async with self.kernel.connection() as conn:
                await tasks.block_in_review(conn, task, actor=work.agent, reason=reason)

    async def _block_for_refs(self, work: Work, task: Task, undone: list[str]) -> StageOutcome:
        """Work that reached a ref without review was taken back: block the task."""
        reason = self.workspace.foreign_moves_reason(undone)
        with contextlib.suppress(errors.StaleLease, errors.BadInput):
            async with self.kernel.connection() as conn:
                await tasks.transition(
                    conn,
                    task.id,
                    TaskStatus.blocked,
                    actor="kernel",
                    token=None,
                    error=reason[:2000],
                    reason=reason[:2000],
                )
        return StageOutcome("blocked", reason)

    async def _release_if_still_held(self, task: Task, reason: str) -> None:
        # release() checks the token: a lease already ended (cancelled) is left alone, and
        # the database frees the agent whichever way the lease ended
        with contextlib.suppress(errors.StaleLease):
            async with self.kernel.connection() as conn:
                await tasks.release(conn, task, reason=reason)

    async def _stage_for(
        self, task: Task, agent: str
    ) -> tuple[str, str, dict[str, Any], RoleConfig]:
        async with self.kernel.connection() as conn:
            memory = await kmemory.read_memory(conn, agent)
            msgs = await kmessages.list_messages(conn, task_id=task.id, limit=kmessages.MAX_LIST)
            children = await tasks.list_tasks(conn, parent_id=task.id)
            extra = await roster.overrides(conn, agent)
        # the agent's own model and instructions sit on top of its role's (read per task,
        # so `agentos agent edit` takes effect at the agent's next task)
        role = with_agent_model(self.role, self.settings, extra.model if extra else None)
        tdict = task.model_dump(mode="json")
        base = {
            "agent": agent,
            "task": tdict,
            "memory": memory,
            "branch": branch_name(task.id),
            "base_branch": self.workspace.base_branch,
            "instructions": extra.instructions if extra else "",
            "skills": extra.skills if extra else [],
        }
        feedback = [m.body for m in msgs if m.kind == "review"]
        others = [
            {"from_agent": m.from_agent, "body": m.body, "kind": m.kind}
            for m in msgs
            if m.kind != "review"
        ]
        if task.status == TaskStatus.review:
            return "review", f"rejections={task.rejections}", {**base, "messages": others}, role
        if self.role.stage == "plan":
            done = [c for c in children if c.status == TaskStatus.done]
            key = f"children={len(children)},done={len(done)}"
            subtasks = [c.model_dump(mode="json") for c in children]
            all_done = bool(children) and len(done) == len(children)
            return (
                "plan",
                key,
                {**base, "subtasks": subtasks, "all_done": all_done, "messages": others},
                role,
            )
        return (
            "work",
            f"rejections={task.rejections}",
            {**base, "feedback": feedback, "messages": others},
            role,
        )

    async def check_command(self) -> tuple[str | None, str]:
        """The reviewer's check for this workspace and where it came from."""
        try:
            in_repo = checks.workspace_check(
                await self.workspace.read_config(checks.WORKSPACE_CONFIG)
            )
        except ValueError as exc:
            log.warning("%s; using the role's check", exc)
            in_repo = None
        return checks.choose(
            setting=self.settings.check_command, workspace=in_repo, role=self.role.check_command
        )

    async def _run_check(self, worktree: Path) -> checks.CheckResult:
        command, source = await self.check_command()
        if command is None:
            return checks.CheckResult("(none)", "passed", 0, "no check configured")
        expanded = checks.expand(command)
        try:
            res = await run_in_worktree(
                expanded,
                worktree=worktree,
                timeout=checks.CHECK_TIMEOUT,
                network=self.role.network,
            )
        except (SandboxUnavailable, ProcessStartError) as exc:
            return checks.CheckResult(command, "cannot_run", -1, str(exc), str(exc))
        code = res.exit_code if res.exit_code is not None else -1
        if res.timed_out:
            return checks.CheckResult(
                command,
                "timed_out",
                code,
                checks.tail(res.output),
                f"the check did not finish in {checks.CHECK_TIMEOUT:.0f} s; "
                + checks.advice(source),
            )
        outcome, reason = checks.classify(expanded, code, res.output)
        if outcome == "cannot_run":
            reason = f"{reason}; {checks.advice(source)}"
        return checks.CheckResult(command, outcome, code, checks.tail(res.output), reason)

    async def handle_activation(self, work: Work) -> None:
        """Heartbeats and messages: answer what the agent owes (agents/conversation.py);
        an idle team costs nothing."""
        act = work.activation
        assert act is not None
        await self.answerer.answer_pending(work.agent)
        if act.kind == "heartbeat" and self.role.stage == "plan":
            await self._replan_stuck_goals()

    async def _replan_stuck_goals(self) -> None:
        """A goal waiting on a failed or blocked subtask comes back for re-planning."""
        async with self.kernel.connection() as conn:
            await tasks.unblock_stuck_goals(conn, role=self.role.name)


async def _health_server(hosts: list[AgentHost], port: int) -> asyncio.Server:
    """/readyz: every host of the process is registered; /livez: and each heartbeat is
    fresh (the rule of agentos.session_alive, sql/006, in this process's own clock)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await reader.readline()).decode(errors="replace")
            path = line.split(" ")[1] if " " in line else "/"
            if path.startswith("/metrics"):
                # Prometheus: this process's metrics (kernel/metrics.py, agents/metrics.py)
                await kmetrics.refresh(hosts[0].kernel)
                metrics_body, content_type = kmetrics.render()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: "
                    + content_type.encode()
                    + b"\r\nContent-Length: "
                    + str(len(metrics_body)).encode()
                    + b"\r\nConnection: close\r\n\r\n"
                    + metrics_body
                )
                await writer.drain()
                return
            now = asyncio.get_running_loop().time()
            ready = all(h.ready.is_set() for h in hosts)
            fresh = all(
                now - h.last_heartbeat_ok < 3 * h.kernel.settings.lease_seconds for h in hosts
            )
            ok = (ready and fresh) if path.startswith("/livez") else ready
            body = b"ok\n" if ok else b"not ready\n"
            status = b"200 OK" if ok else b"503 Service Unavailable"
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\nContent-Type: text/plain\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(serve, "0.0.0.0", port)


@dataclass
class RoleAgents:
    """One role's part of an agent process: its agents, runtime, host and leadership."""

    role: RoleConfig
    names: list[str]
    runtime: AgentRuntime
    host: AgentHost
    leadership: Leadership | None


class AgentProcess:
    """The composition root of an agent process (`agent run`, `agent team`, a pod).

    It owns the kernel (one pool, one listener), the roles' hosts, the kernel's duties,
    the leaderships, the scaler and the health server: build it, then `run(stop)`; it
    starts everything, waits for `stop` (or a part failing) and stops everything in
    order, releasing every lease it holds."""

    def __init__(
        self,
        settings: AgentSettings,
        roles: list[tuple[str, str | None, int | None]],
        *,
        health_port: int = 0,
    ) -> None:
        # a typo in a role is an error before anything connects
        self.settings = settings
        self.specs = [(load_role(r, settings), name, n) for r, name, n in roles]
        self.health_port = health_port
        self.kernel: Kernel | None = None
        self.parts: list[RoleAgents] = []

    async def _migrate(self) -> None:
        # Migrations need the admin role; the agents then connect as one that cannot
        # change the schema or reach past the database (kernel.db.resolve_database_url).
        admin = await Kernel(self.settings).open(min_size=1, max_size=1)
        try:
            await admin.ensure_schema()
        finally:
            await admin.close()

    async def _open(self) -> Kernel:
        slots = sum(role.concurrency if n is None else n for role, _, n in self.specs)
        await self._migrate()
        kernel = await Kernel(self.settings, agent=True).open(
            min_size=1, max_size=host_pool_size(slots)
        )
        self.kernel = kernel
        workspace = await Workspace(
            self.settings.workspace_path,
            self.settings.worktrees_path,
            self.settings.workspace_remote,
            kernel=kernel,
            base_branch=self.settings.base_branch,
        ).ensure()
        # Both take seconds on a busy machine and block whatever thread runs them: do
        # them before any lease is held, off the event loop. (litellm imported lazily on
        # the first LLM call froze the loop past a 3 s lease: no renewal, no heartbeat.)
        await asyncio.to_thread(ensure_litellm)
        sandbox = await asyncio.to_thread(sandbox_status)
        # said at start: without a sandbox the shell tool and executors refuse to run
        (log.info if sandbox.available else log.warning)("%s", sandbox.describe())
        # this process redacts every secret its key opens (agents/toolbox.py)
        await toolbox.prime_redactor(kernel)
        # roles only defined agents have (`agentos agent create --role R`) run too, with
        # no agents of their own, when this process hosts a team
        if len(self.specs) > 1:
            have = [(r.name, name, n or 0) for r, name, n in self.specs]
            for extra in await _defined_only_roles(kernel, self.settings, have):
                self.specs.append((load_role(extra, self.settings), None, 0))
        for role, name, n in self.specs:
            count = role.concurrency if n is None else n
            names = default_names(role.name, name, count) if count else []
            # a secret or skill the role names that does not exist is an error now,
            # before any task is claimed
            await toolbox.check_role(kernel, role, names)
            runtime = AgentRuntime(kernel, self.settings, role, workspace)
            if role.heartbeat is not None:
                await _ensure_heartbeat(kernel, role)
            await kernel.subscribe([bus.TASK], runtime.on_notify)
            # a leader_only role claims only while it holds its role's duty
            leadership = (
                Leadership(kernel, role.name, uuid.uuid4(), self.settings.leader_ttl_seconds)
                if role.leader_only
                else None
            )
            host = AgentHost(
                kernel,
                role=role.name,
                agents=names,
                handler=runtime.handle,
                model=role.model,
                gate=_leading(leadership),
            )
            self.parts.append(RoleAgents(role, names, runtime, host, leadership))
        return kernel

    async def run(self, stop: asyncio.Event) -> int:
        """Start everything, wait for `stop` or a failure, stop everything; exit code."""
        try:
            kernel = await self._open()
            return await self._serve(kernel, stop)
        finally:
            if self.kernel is not None:
                await self.kernel.close()

    async def _serve(self, kernel: Kernel, stop: asyncio.Event) -> int:
        duties = KernelDuties(kernel, uuid.uuid4())
        background = [asyncio.create_task(duties.run(), name="duties")]
        lead_stop = asyncio.Event()  # leases are released after the hosts stopped
        for part in self.parts:
            background.append(asyncio.create_task(part.host.run(), name=f"host-{part.role.name}"))
            background.append(
                asyncio.create_task(
                    _host_defined_agents(
                        kernel, part.host, part.role.name, stop, self.settings.poll_interval * 3
                    ),
                    name=f"defined-agents-{part.role.name}",
                )
            )
            if part.leadership is not None:
                background.append(
                    asyncio.create_task(
                        part.leadership.run(lead_stop, on_gain=part.host.nudge),
                        name=f"lead-{part.role.name}",
                    )
                )
        leading = next((p.leadership for p in self.parts if p.leadership is not None), None)
        if leading is not None:
            from agentos.agents.scaler import WorkerScaler

            scaler = WorkerScaler.from_environment()  # None (said once) outside a cluster
            if scaler is not None:
                background.append(
                    asyncio.create_task(
                        _scale(kernel, scaler, leading, stop, self.settings.scaler_role),
                        name="scale",
                    )
                )
        server = None
        if self.health_port:
            server = await _health_server([p.host for p in self.parts], self.health_port)
        for part in self.parts:
            log.info(
                "%s agents running: %s (model %s)",
                part.role.name,
                ", ".join(part.names),
                part.role.model,
            )
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *background], return_when=asyncio.FIRST_COMPLETED)
        failed = False
        for t in done:
            if t is waiter:
                continue
            # a part that ends before `stop` has failed, with an exception or without
            failed = True
            if t.exception() is not None:
                log.error("agent process failed: %s: %s", t.get_name(), t.exception())
            else:
                log.error("agent process failed: %s stopped by itself", t.get_name())
        waiter.cancel()
        stop.set()
        for part in self.parts:
            part.host.stop()
        duties.stop()
        lead_stop.set()
        for t in background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(t, 30)
        if server is not None:
            server.close()
        for part in self.parts:
            if part.runtime.browser is not None:
                with contextlib.suppress(Exception):
                    await part.runtime.browser.close()
        return 1 if failed else 0


def _leading(leadership: Leadership | None) -> Callable[[], bool] | None:
    return (lambda: leadership.is_leader) if leadership is not None else None


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve_role(
    settings: AgentSettings,
    *,
    role_name: str,
    name: str | None,
    concurrency: int | None,
    health_port: int | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run agents of a role until SIGTERM/SIGINT (or `stop`); returns the exit code."""
    port = health_port if health_port is not None else settings.health_port
    process = AgentProcess(settings, [(role_name, name, concurrency)], health_port=port)
    return await process.run(stop or _stop_on_signals())


async def serve_team(
    settings: AgentSettings, roles: list[tuple[str, str | None, int]], *, health_port: int = 0
) -> int:
    """Run several roles' agents in this one process (`agentos agent team`): one Python
    runtime, one model layer, one pool, one listener and one set of kernel duties for
    the whole local team. If one role's host fails, the whole process stops (non-zero)
    so its supervisor restarts it."""
    process = AgentProcess(settings, list(roles), health_port=health_port)
    return await process.run(_stop_on_signals())


async def _defined_only_roles(
    kernel: Kernel, settings: AgentSettings, roles: list[tuple[str, str | None, int]]
) -> list[str]:
    """Roles of defined agents that the team does not run yet and this machine can load."""
    async with kernel.connection() as conn:
        wanted = await roster.defined_roles(conn)
    have = {r for r, _, _ in roles}
    known = set(available_roles(settings))
    missing = [r for r in wanted if r not in have and r not in known]
    if missing:
        log.warning(
            "defined agents have roles this machine has no file for (%s); they wait for a "
            "process of their role",
            ", ".join(missing),
        )
    return [r for r in wanted if r not in have and r in known]


MAX_DEFINED_PER_PROCESS = 64


async def _host_defined_agents(
    kernel: Kernel, host: AgentHost, role: str, stop: asyncio.Event, every: float
) -> None:
    """Host the role's defined agents no live session hosts, as slots of this process;
    give back those removed or moved to another role (once they are idle)."""
    await host.ready.wait()
    adopted: list[str] = []
    while not stop.is_set():
        session = host.session_id
        try:
            if session is not None:
                async with kernel.connection() as conn:
                    if adopted:
                        keep = set(await roster.still_hosted(conn, session, role, adopted))
                        for gone in [a for a in adopted if a not in keep]:
                            if host.drop_agent(gone):
                                await roster.release(conn, session, gone)
                                adopted.remove(gone)
                                log.info("%s: no longer hosted here (removed or moved)", gone)
                    room = MAX_DEFINED_PER_PROCESS - len(adopted)
                    new = await roster.adopt(conn, session, role, limit=room) if room > 0 else []
                if new:
                    host.add_agents(new)
                    adopted.extend(new)
                    log.info("%s agents hosted here as well: %s", role, ", ".join(new))
        except Exception as exc:  # never the reason a host stops: try again later
            log.warning(
                "defined agents of %s: %s", role, str(exc).splitlines()[0] if str(exc) else exc
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(every, 0.5))


async def _scale(
    kernel: Kernel,
    scaler: Any,
    leadership: Leadership,
    stop: asyncio.Event,
    role: str,
    every: float = 15.0,
) -> None:
    """As the leading orchestrator, size the worker Deployment from the queue depth."""
    while not stop.is_set():
        try:
            async with kernel.connection() as conn:
                ready, busy = await tasks.role_load(conn, role)
            await asyncio.to_thread(scaler.reconcile, ready, busy, leadership.is_leader)
        except Exception as exc:
            log.warning("worker scaling skipped: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)


async def _ensure_heartbeat(kernel: Kernel, role: RoleConfig) -> None:
    assert role.heartbeat is not None
    name = f"{role.name}-heartbeat"
    async with kernel.connection() as conn:
        if not await schedules.schedule_exists(conn, name):
            with contextlib.suppress(errors.KernelError):
                await schedules.add_schedule(
                    conn,
                    name=name,
                    cron=role.heartbeat.cron,
                    role=role.name,
                    activation="heartbeat",
                    precondition=role.heartbeat.precondition,
                )


__all__ = [
    "AgentProcess",
    "AgentRuntime",
    "StageOutcome",
    "default_names",
    "serve_role",
    "serve_team",
]
