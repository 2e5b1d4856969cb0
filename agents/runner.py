"""`agentos agent run`: one process hosting N agents of one role.

It registers the agents, claims work through the kernel (AgentHost), runs the durable
loop for each claimed task, answers messages, keeps its role's heartbeat schedule,
takes part in the kernel's singleton duties (lease rescue, schedules) under leader
election, serves /livez and /readyz for Kubernetes, and on SIGTERM/Ctrl-C releases
the leases it holds. An orchestrator claims only while it leads ("orchestrator" duty),
so only one orchestrator plans at a time however many run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import socket
import uuid
from pathlib import Path
from typing import Any

from agentos.agents import checks, toolbox
from agentos.agents.config import AgentSettings, RoleConfig, load_role
from agentos.agents.llm import LLMClient, ensure_litellm
from agentos.agents.loop import Loop, Stage, StageOutcome
from agentos.agents.workspace import Workspace, branch_name
from agentos.kernel import bus, errors, schedules, tasks
from agentos.kernel import memory as kmemory
from agentos.kernel import messages as kmessages
from agentos.kernel.db import Kernel
from agentos.kernel.duties import KernelDuties
from agentos.kernel.leader import Leadership
from agentos.kernel.models import Task, TaskStatus
from agentos.kernel.runtime import AgentHost, Work
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
        self.browser: Any = None
        if any(t.name.startswith("browser_") for t in self.tools):
            from agentos.tools.browser import BrowserPool

            self.browser = BrowserPool()  # one context per task, closed when its work ends

    def on_notify(self, channel: str, payload: str) -> None:
        """Stop a loop between steps when its task is cancelled (NOTIFY agentos_task)."""
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
        stop = asyncio.Event()
        self.stops[task.id] = stop

        async def watch_lost() -> None:
            await work.lost.wait()
            stop.set()

        watcher = asyncio.create_task(watch_lost())
        extras_stack = contextlib.AsyncExitStack()  # the stage's MCP servers (agents/toolbox.py)
        try:
            stage, round_key, tvars = await self._stage_for(task, work.agent)
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
                    extras_stack, self.kernel, self.role, agent=work.agent, task=task,
                    stage=stage, worktree=worktree,
                )  # fmt: skip
            except toolbox.McpUnavailable as exc:
                await self._block_for_tools(work, task, stage, str(exc))
                return
            st = Stage(
                kernel=self.kernel,
                settings=self.settings,
                role=self.role,
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
            if stage == "work" and self.role.executor != "builtin":
                from agentos.agents import executors

                outcome = await executors.run_work_stage(st)
            else:
                outcome = await Loop(st).run()
            if refs_before is not None and outcome.kind != "submit_for_review":
                undone = await self.workspace.undo_foreign_moves(task.id, refs_before)
                if undone:
                    outcome = await self._block_for_refs(work, task, undone)
            if outcome.kind == "cancelled" and not work.lost.is_set():
                await self._release_if_still_held(task, "stopped")
            log.info(
                "%s: task #%s %s: %s",
                work.agent,
                task.id,
                outcome.kind,
                outcome.detail[:200],
                extra={"action": f"agent.{outcome.kind}", "task": task.id},
            )
        finally:
            with contextlib.suppress(Exception):
                await extras_stack.aclose()
            watcher.cancel()
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

    async def _stage_for(self, task: Task, agent: str) -> tuple[str, str, dict[str, Any]]:
        async with self.kernel.connection() as conn:
            memory = await kmemory.read_memory(conn, agent)
            msgs = await kmessages.list_messages(conn, task_id=task.id, limit=kmessages.MAX_LIST)
            children = await tasks.list_tasks(conn, parent_id=task.id)
        tdict = task.model_dump(mode="json")
        base = {
            "agent": agent,
            "task": tdict,
            "memory": memory,
            "branch": branch_name(task.id),
            "base_branch": self.workspace.base_branch,
        }
        feedback = [m.body for m in msgs if m.kind == "review"]
        others = [
            {"from_agent": m.from_agent, "body": m.body, "kind": m.kind}
            for m in msgs
            if m.kind != "review"
        ]
        if task.status == TaskStatus.review:
            return "review", f"rejections={task.rejections}", {**base, "messages": others}
        if self.role.stage == "plan":
            done = [c for c in children if c.status == TaskStatus.done]
            key = f"children={len(children)},done={len(done)}"
            subtasks = [c.model_dump(mode="json") for c in children]
            all_done = bool(children) and len(done) == len(children)
            return (
                "plan",
                key,
                {**base, "subtasks": subtasks, "all_done": all_done, "messages": others},
            )
        return (
            "work",
            f"rejections={task.rejections}",
            {**base, "feedback": feedback, "messages": others},
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
        """Heartbeats and messages: answer unread mail; an idle team costs nothing."""
        act = work.activation
        assert act is not None
        async with self.kernel.connection() as conn:
            unread = await kmessages.unread_direct(conn, work.agent)
        for m in unread:
            reply = await self.llm.chat(
                agent=work.agent,
                role=self.role,
                task_id=m.task_id,
                model=self.role.heartbeat_model,  # the cheap model: answering mail is routine
                tools=[],
                messages=[
                    {
                        "role": "system",
                        "content": f"You are {work.agent}, the {self.role.name} "
                        "of an AgentOS team. Answer the message briefly.",
                    },
                    {
                        "role": "user",
                        "content": f"Message from {m.from_agent or 'a person'}: {m.body}",
                    },
                ],
            )
            async with self.kernel.connection() as conn:
                await kmessages.answer(conn, m, from_agent=work.agent, body=reply.content)
        if act.kind == "heartbeat" and self.role.stage == "plan":
            await self._replan_stuck_goals(work.agent)

    async def _replan_stuck_goals(self, agent: str) -> None:
        """A goal waiting on a failed or blocked subtask comes back for re-planning."""
        async with self.kernel.connection() as conn:
            await tasks.unblock_stuck_goals(conn)


async def _health_server(host: AgentHost, port: int) -> asyncio.Server:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await reader.readline()).decode(errors="replace")
            path = line.split(" ")[1] if " " in line else "/"
            loop = asyncio.get_running_loop()
            # the rule of agentos.session_alive (sql/006), in this process's own clock
            fresh = loop.time() - host.last_heartbeat_ok < 3 * host.kernel.settings.lease_seconds
            ok = (
                (host.ready.is_set() and fresh)
                if path.startswith("/livez")
                else host.ready.is_set()
            )
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
    from agentos.kernel.migrate import migrate, status

    role = load_role(role_name, settings)
    n = concurrency or role.concurrency
    names = default_names(role.name, name, n)
    # Migrations need the admin role; the agents then connect as one that cannot change
    # the schema or reach past the database (kernel.db.resolve_database_url).
    admin = await Kernel(settings).open(min_size=1, max_size=1)
    try:
        async with admin.connection() as conn:
            st = await status(conn)
        if not st.ok:
            conn2 = await admin.connect(autocommit=True)
            try:
                await migrate(conn2)
            finally:
                await conn2.close()
    finally:
        await admin.close()
    kernel = await Kernel(settings, agent=True).open(min_size=1, max_size=max(4, n * 2 + 2))
    try:
        workspace = await Workspace(
            settings.workspace_path,
            settings.worktrees_path,
            settings.workspace_remote,
            kernel=kernel,
            base_branch=settings.base_branch,
        ).ensure()
        # a secret or skill the role names that does not exist is an error now, before any
        # task is claimed; and this process redacts every secret its key opens
        await toolbox.check_role(kernel, role, names)
        await toolbox.prime_redactor(kernel)
        runtime = AgentRuntime(kernel, settings, role, workspace)
        # Both take seconds on a busy machine and block whatever thread runs them: do
        # them before any lease is held, off the event loop. (litellm imported lazily on
        # the first LLM call froze the loop past a 3 s lease: no renewal, no heartbeat.)
        await asyncio.to_thread(ensure_litellm)
        sandbox = await asyncio.to_thread(sandbox_status)
        # said at start: without a sandbox the shell tool and executors refuse to run
        (log.info if sandbox.available else log.warning)("%s", sandbox.describe())
        if role.heartbeat is not None:
            await _ensure_heartbeat(kernel, role)
        work_channels = [
            bus.work_channel(f"role:{role.name}"),
            *(bus.work_channel(f"agent:{n}") for n in names),
        ]
        listener = bus.Listener(kernel.url, [bus.TASK, *work_channels])
        listener.subscribe(runtime.on_notify)
        await listener.start()
        leadership = (
            Leadership(kernel, "orchestrator", uuid.uuid4(), settings.leader_ttl_seconds)
            if role.leader_only
            else None
        )
        host = AgentHost(
            kernel,
            role=role.name,
            agents=names,
            handler=runtime.handle,
            model=role.model,
            listener=listener,
            gate=(lambda: leadership.is_leader) if leadership else None,
        )
        duties = KernelDuties(kernel, uuid.uuid4())
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        background = [
            asyncio.create_task(duties.run(), name="duties"),
            asyncio.create_task(host.run(), name="host"),
        ]
        if leadership is not None:
            background.append(asyncio.create_task(_lead(leadership, listener, stop), name="lead"))
            from agentos.agents.scaler import WorkerScaler

            scaler = WorkerScaler.from_environment()  # None (said once) outside a cluster
            if scaler is not None:
                background.append(
                    asyncio.create_task(
                        _scale(
                            kernel,
                            scaler,
                            leadership,
                            stop,
                            settings.scaler_role,
                        ),
                        name="scale",
                    )
                )
        server = None
        port = health_port if health_port is not None else settings.health_port
        if port:
            server = await _health_server(host, port)
        log.info("%s agents running: %s (model %s)", role.name, ", ".join(names), role.model)
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *background], return_when=asyncio.FIRST_COMPLETED)
        failed = False
        for t in done:
            if t is not waiter and t.exception() is not None:
                log.error("agent process failed: %s", t.exception())
                failed = True
        waiter.cancel()
        host.stop()
        duties.stop()
        for t in background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(t, 30)
        if leadership is not None:
            await leadership.release()
        if server is not None:
            server.close()
        await listener.stop()
        if runtime.browser is not None:
            with contextlib.suppress(Exception):
                await runtime.browser.close()
        return 1 if failed else 0
    finally:
        await kernel.close()


async def serve_team(
    settings: AgentSettings, roles: list[tuple[str, str | None, int]], *, health_port: int = 0
) -> int:
    """Run several roles' agents in this one process (`agentos agent team`): one Python
    runtime and one model layer for the whole local team. Each role keeps its own pool,
    listener and leadership, exactly as in a process of its own; if one role's host
    fails, the whole process stops (non-zero) so its supervisor restarts it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def one(i: int, role: str, name: str | None, slots: int) -> int:
        try:
            return await serve_role(
                settings,
                role_name=role,
                name=name,
                concurrency=slots,
                health_port=health_port if i == 0 else 0,
                stop=stop,
            )
        finally:
            stop.set()  # one role ending (a crash, or the signal) ends the team

    codes = await asyncio.gather(
        *(one(i, r, n, c) for i, (r, n, c) in enumerate(roles)), return_exceptions=True
    )
    for code in codes:
        if isinstance(code, BaseException):
            log.error("team process failed: %s", code)
    return max((c if isinstance(c, int) else 1) for c in codes) if codes else 0


async def _lead(leadership: Leadership, listener: bus.Listener, stop: asyncio.Event) -> None:
    while not stop.is_set():
        was = leadership.is_leader
        await leadership.tick()
        if leadership.is_leader and not was:
            listener.woken.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=leadership.ttl / 3)


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
    "AgentRuntime",
    "StageOutcome",
    "default_names",
    "serve_role",
    "serve_team",
]
