"""Run a work stage with an external coding agent (the role's `executor`).

Protocol
--------
The stage's steps are the same conversation the builtin loop writes (agentos.steps,
stage 'work'): seq 0 'system' (the executor's instructions), a 'user' row per round
(the task prompt rendered from the role's templates), then the CLI's own events as
they arrive: 'llm' (assistant text), 'tool_call' and 'tool_result' (the CLI's tools),
and 'note' rows for the executor's session id and its final result. Every append
carries the lease token, so a frozen holder cannot write into a new holder's stage.

1. Budget: an estimate is reserved on the task and on the agent's day before the CLI
   starts (a refusal blocks the task, the usual `task retry --budget` flow). Each cost
   the CLI reports is reserved and settled as it comes, and a refusal kills the CLI and
   blocks the task; a CLI with its own cap (Claude Code's --max-budget-usd) gets the
   task budget too. Every reported usage is a row in agentos.llm_calls.
2. The CLI runs sandboxed (see process.py) in the task's worktree, with a private HOME
   per task (AGENTOS_HOME/executors/task-<id>) that keeps its sessions, and only the
   provider variables its adapter names plus the role's `pass_env`.
3. A stop (cancel, lost lease, the agent shutting down) or the timeout kills the CLI's
   whole process group.
4. Resume: a session id is written (a 'note') as soon as it is known, before the CLI
   starts where the CLI takes one. A holder that takes the task over finds it and
   resumes the session when the CLI can and the session is in the private HOME, else it
   starts the CLI again on the worktree as it is. Events carry the CLI's own ids; one
   already recorded is not recorded again, and seq continues after the last row.
5. Done: what the CLI left uncommitted is committed on agentos/task-<id>, and the task
   goes to review through the same action the builtin loop uses (submit_for_review),
   with the CLI's final message as the summary. A final message that starts with
   "BLOCKED:" blocks the task with its reason instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

import jinja2
from agentos.agents import terminal
from agentos.agents.executors import process
from agentos.agents.executors.base import Adapter, Event, Plan
from agentos.agents.executors.registry import get_adapter, resolve_binary
from agentos.agents.loop import Loop, Stage, StageOutcome, render
from agentos.agents.workspace import GitError, git
from agentos.kernel import activities, errors, steps
from agentos.kernel.usage import (
    BudgetExceeded,
    Reservation,
    agent_day_scope,
    record_call,
    reserve,
    settle,
    task_scope,
)
from agentos.tools.base import ToolError
from agentos.tools.sandbox import is_secret_name

log = logging.getLogger(__name__)

OUTPUT_CAP = 16_000
SUMMARY_CAP = 4000
STDERR_TAIL = 4000
DRAIN_SECONDS = 5.0
BLOCKED_PREFIX = "BLOCKED:"
REDACTED = "[redacted]"

EXECUTOR_SYSTEM = """\
You are {{ agent }}, a worker of an AgentOS team, running headless in a git worktree on
branch {{ branch }}: the current directory. Do the task below in this directory: write
the code and its tests, and run the tests. Stay in this directory; do not switch
branches, push or merge. When you are done, stop: AgentOS commits what you leave and
hands it to review with your final message as the summary, so end with a short summary
of what you did. If you cannot do the task, make your final message start with
"BLOCKED:" and say why.
{% if memory %}

Your memory:
{{ memory }}
{% endif %}"""

EXECUTOR_REVIEW_SYSTEM = """\
You are {{ agent }}, the reviewer of an AgentOS team, running headless in a git worktree
on branch {{ branch }} (the current directory): the work of another agent on the task
below, to be merged into {{ base_branch }}. Judge it against the task's acceptance
criteria: read the change (`git diff {{ base_branch }}...HEAD`, `git log`), read the
code, and run what helps you judge. Do not change any file: what you change is thrown
away. AgentOS already ran the check; its result is below the task.

End your final message with one line that is a JSON object, the verdict, either
  {"verdict": "approve", "comment": "why the work meets the acceptance criteria"}
or
  {"verdict": "reject", "feedback": "what the worker must change"}
If you cannot judge at all, make your final message start with "BLOCKED:" and say why.
{% if memory %}

Your memory:
{{ memory }}
{% endif %}"""

CONTINUE = (
    "You were interrupted (the agent running you stopped). Continue the task where you "
    "left off; the worktree is as you left it. The task, again:\n\n"
)


async def run_work_stage(st: Stage) -> StageOutcome:
    """Run the task's work stage with the role's executor; returns how it ended."""
    from agentos.agents import metrics

    t0 = time.monotonic()
    outcome = "error"
    try:
        result = await ExecutorRun(st).run()
        outcome = result.kind
        return result
    finally:
        metrics.EXECUTOR_RUNS.labels(st.role.executor, outcome).inc()
        metrics.EXECUTOR_SECONDS.labels(st.role.executor).observe(time.monotonic() - t0)


async def run_review_stage(st: Stage) -> StageOutcome:
    """Run the task's review stage with the role's executor: its verdict approves (the
    merge) or rejects (the feedback goes to the worker's next round)."""
    return await ExecutorReview(st).run()


def parse_verdict(text: str) -> tuple[str, str] | None:
    """The reviewer's verdict in its final message: ("approve", comment) or ("reject",
    feedback), from the last line that is a JSON object with a `verdict`; None if none."""
    for line in reversed([ln.strip() for ln in text.splitlines() if ln.strip()]):
        start = line.find("{")
        if start < 0 or not line.endswith("}"):
            continue
        try:
            obj = json.loads(line[start:])
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        verdict = str(obj.get("verdict", "")).strip().lower()
        if verdict == "approve":
            return "approve", str(obj.get("comment") or "approved").strip()
        if verdict == "reject":
            said = str(obj.get("feedback") or obj.get("comment") or "").strip()
            return "reject", said or "rejected without feedback"
    return None


def _render_string(source: str, **ctx: Any) -> str:
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True
    )
    return env.from_string(source).render(**ctx).strip()


class ExecutorRun(Loop):
    """One executor run of a work stage (a Loop, so the terminal actions work on it)."""

    instructions = EXECUTOR_SYSTEM

    def __init__(self, st: Stage) -> None:
        super().__init__(st)
        self.adapter: Adapter = get_adapter(st.role.executor)
        self.options = st.role.executor_options
        self.keys: set[str] = set()
        self.session_id: str | None = None
        self.result: Event | None = None
        self.abort: tuple[str, str] | None = None  # (why, detail): budget, lost
        self.proc: asyncio.subprocess.Process | None = None
        self.secrets = sorted(
            {v for k, v in os.environ.items() if is_secret_name(k) and len(v) >= 6},
            key=len,
            reverse=True,
        )
        self.reported = {"cost": 0.0, "prompt": 0, "completion": 0}
        self.unaccounted = 0.0
        self.scopes: list[tuple[str, float]] = []
        self.model = self.options.model or self.adapter.name
        self.t_first_event: float | None = None

    # -------------------------------------------------------------- helpers --
    def redact(self, value: Any) -> Any:
        """The value with every secret of our environment replaced (recursively)."""
        if isinstance(value, str):
            for s in self.secrets:
                if s in value:
                    value = value.replace(s, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self.redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact(v) for v in value]
        return value

    async def append(
        self,
        kind: str,
        content: dict[str, Any],
        *,
        key: str | None = None,
        tool_name: str | None = None,
        tool_call_id: str | None = None,
    ) -> None:
        """Write a step (redacted, with the executor's name and the event's own id)."""
        content = {**self.redact(content), "executor": self.adapter.name}
        if key is not None:
            content["event"] = key
            self.keys.add(key)
        await self._append(kind, content, tool_name=tool_name, tool_call_id=tool_call_id)

    async def activity(self, message: str, tools: list[str]) -> None:
        st = self.st
        async with st.kernel.connection() as conn:
            await activities.record(
                conn,
                "agent.step",
                task_id=st.task.id,
                message=self.redact(message)[:300],
                data={
                    "stage": st.stage,
                    "seq": len(self.rows) - 1,
                    "tools": tools,
                    "executor": self.adapter.name,
                },
                actor=st.agent,
            )

    def home(self) -> Path:
        """The executor's private HOME for this task (keeps its sessions for a resume)."""
        return self.st.settings.home / "executors" / f"task-{self.st.task.id}"

    # ------------------------------------------------------------------ run --
    async def run(self) -> StageOutcome:
        """Start or resume the executor for this stage and see it to review."""
        st = self.st
        async with st.kernel.connection() as conn:
            self.rows = await steps.load(conn, st.task.id, st.stage)
        self.keys = {str(r.content["event"]) for r in self.rows if r.content.get("event")}
        dirs = [d for d in (st.settings.home / "roles", st.settings.roles_dir) if d and d.is_dir()]
        if self.options.prompt:
            system_text = render(self.options.prompt, dirs, **st.template_vars)
        else:
            system_text = _render_string(self.instructions, **st.template_vars)
        task_text = render(st.role.prompts.task, dirs, **st.template_vars)
        if not self.rows:
            await self.append("system", {"text": system_text})
        last_user = next((r for r in reversed(self.rows) if r.kind == "user"), None)
        new_round = last_user is None or last_user.content.get("round") != st.round_key
        if new_round:
            await self.append("user", {"text": task_text, "round": st.round_key})
        recorded = [
            r.content["session_id"]
            for r in self.rows
            if r.kind == "note"
            and r.content.get("session_id")
            and r.content.get("executor") == self.adapter.name
        ]
        home = self.home()
        home.mkdir(parents=True, exist_ok=True)
        resume = bool(
            recorded and self.adapter.resumable and self.adapter.has_session(home, recorded[-1])
        )
        if resume:
            self.session_id = recorded[-1]
            if self.adapter.session_totals:
                totals = [
                    r.content["usage_totals"]
                    for r in self.rows
                    if r.kind == "note" and r.content.get("session_id") == self.session_id
                    and r.content.get("usage_totals")
                ]  # fmt: skip
                if totals:
                    self.reported.update(totals[-1])
            prompt = task_text if new_round else CONTINUE + task_text
        else:
            prompt = f"{system_text}\n\n{task_text}"
        binary = resolve_binary(self.adapter, self.options)
        if binary is None:
            command = self.options.command or ["executor_options.command"]
            wanted = self.options.binary or self.adapter.binary or command[0]
            return await self.block(
                f"the {self.adapter.name} executor's program was not found ({wanted}); "
                "install it or set executor_options.binary"
            )
        limits = st.role.limits
        task_budget = float(st.template_vars["task"].get("budget_usd") or 0) or None
        budget = task_budget if task_budget is not None else limits.task_budget_usd
        self.scopes = [
            (agent_day_scope(st.agent), limits.agent_daily_budget_usd),
            (task_scope(st.task.id), budget),
        ]
        try:
            async with st.kernel.connection() as conn:
                reservation = await reserve(
                    conn, self.scopes, limits.call_estimate_usd, ttl=self.options.timeout + 120
                )
        except BudgetExceeded as exc:
            async with st.kernel.connection() as conn:
                await record_call(
                    conn, agent=st.agent, role=st.role.name, task_id=st.task.id,
                    model=self.model, prompt_tokens=0, completion_tokens=0, cost_usd=0,
                    latency_ms=0, outcome="budget", error=str(exc),
                )  # fmt: skip
            return await self.block(str(exc))
        try:
            return await self._run_cli(binary, prompt, resume, budget, home)
        finally:
            with contextlib.suppress(Exception):
                async with st.kernel.connection() as conn:
                    await settle(conn, reservation, self.unaccounted)

    async def _run_cli(
        self, binary: str, prompt: str, resume: bool, budget: float, home: Path
    ) -> StageOutcome:
        st = self.st
        if self.session_id is None and self.adapter.chooses_session:
            self.session_id = str(uuid.uuid4())
            await self.append("note", {"session_id": self.session_id})
        prompt_file = home / "prompt.md"
        prompt_file.write_text(prompt, encoding="utf-8")
        plan = Plan(
            binary=binary,
            prompt=prompt,
            prompt_file=prompt_file,
            worktree=st.worktree,
            home=home,
            task_id=st.task.id,
            options=self.options,
            session_id=self.session_id,
            resume=resume,
            budget_usd=budget,
            # provider keys from the secrets store win over the process environment
            environ={**os.environ, **st.tool_extra.get("executor_env", {})},
            mcp_servers=list(st.tool_extra.get("mcp_servers", [])),
        )
        try:
            self.adapter.prepare(plan)
            argv = self.adapter.argv(plan)
        except ValueError as exc:
            return await self.block(f"the {self.adapter.name} executor: {exc}")
        env = self.adapter.env(plan)
        try:
            self.proc, _ = await process.start(
                argv,
                worktree=st.worktree,
                home=home,
                env=env,
                readable=[*_readable(binary), *st.tool_extra.get("executor_readable", [])],
            )
        except (ToolError, OSError) as exc:
            return await self.block(f"the {self.adapter.name} executor cannot start: {exc}")
        log.info(
            "%s: task #%s: %s %s",
            st.agent,
            st.task.id,
            self.adapter.name,
            "resumed session " + str(self.session_id) if resume else "started",
            extra={"action": "executor.start", "task": st.task.id},
        )
        proc = self.proc
        stderr_tail = bytearray()

        async def read_stderr() -> None:
            assert proc.stderr is not None
            while chunk := await proc.stderr.read(65536):
                stderr_tail.extend(chunk)
                del stderr_tail[:-STDERR_TAIL]

        async def consume() -> None:
            assert proc.stdout is not None
            while True:
                try:
                    raw = await proc.stdout.readline()
                except ValueError:  # a line over the limit: skip what is buffered
                    continue
                if not raw:
                    return
                for ev in self.adapter.parse(raw.decode("utf-8", errors="replace")):
                    await self.handle(ev)

        err_reader = asyncio.create_task(read_stderr())
        consumer = asyncio.create_task(consume())
        stopper = asyncio.create_task(st.stop.wait())
        timed_out = False
        try:
            done, _ = await asyncio.wait(
                {consumer, stopper}, timeout=self.options.timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )  # fmt: skip
            if not done:
                timed_out = True
            if consumer not in done:
                process.kill(proc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(consumer), DRAIN_SECONDS)
            exit_code = await proc.wait()
            if consumer.done() and consumer.exception() is not None:
                raise consumer.exception()  # type: ignore[misc]
            for ev in self.adapter.finish(exit_code):
                await self.handle(ev)
        except errors.StaleLease as exc:
            return StageOutcome("lost", str(exc))
        finally:
            process.kill(proc)
            for t in (consumer, stopper, err_reader):
                t.cancel()
            for t in (consumer, stopper, err_reader):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        if self.abort is not None:
            why, detail = self.abort
            if why == "lost":
                return StageOutcome("lost", detail)
            return await self.block(detail)
        if st.stop.is_set():
            return StageOutcome("cancelled", f"stopped; the {self.adapter.name} run was killed")
        if timed_out:
            return await self.block(
                f"the {self.adapter.name} executor ran past its timeout "
                f"({self.options.timeout:.0f} s) and was killed"
            )
        stderr = self.redact(stderr_tail.decode("utf-8", errors="replace")).strip()
        res = self.result
        if res is None or res.is_error or exit_code != 0:
            said = (res.text if res is not None and res.text else "") or stderr[-1500:]
            sub = (res.arguments or {}).get("subtype") if res is not None else None
            return await self.block(
                f"the {self.adapter.name} executor failed (exit {exit_code}"
                + (f", {sub}" if sub else "")
                + f"): {self.redact(said)[:1500] or '(no output)'}"
            )
        summary = self.redact(res.text).strip()
        if summary.startswith(BLOCKED_PREFIX):
            return await self.block(summary[len(BLOCKED_PREFIX) :].strip()[:2000] or summary)
        return await self.finish(summary[:SUMMARY_CAP] or "(no final message)")

    # --------------------------------------------------------------- events --
    async def handle(self, ev: Event) -> None:
        """Record one event: a step (once), usage and budget, the session id."""
        if self.t_first_event is None:
            self.t_first_event = time.monotonic()
        if ev.kind == "usage":
            await self.usage(ev)
            return
        if ev.key is not None and ev.key in self.keys:
            return  # recorded by an earlier run of this stage (a resumed session replays)
        try:
            if ev.kind == "session" and ev.session_id and ev.session_id != self.session_id:
                self.session_id = ev.session_id
                await self.append("note", {"session_id": ev.session_id}, key=ev.key)
            elif ev.kind == "text" and ev.text.strip():
                await self.append(
                    "llm",
                    {"content": ev.text, "tool_calls": [], "model": ev.model or self.model},
                    key=ev.key,
                )
                first = ev.text.strip().splitlines()[0]
                await self.activity(first, [])
            elif ev.kind == "tool_call":
                await self.append(
                    "tool_call",
                    {"arguments": ev.arguments},
                    key=ev.key,
                    tool_name=ev.tool_name,
                    tool_call_id=ev.tool_call_id,
                )
                await self.activity(_call_hint(ev), [str(ev.tool_name)])
            elif ev.kind == "tool_result":
                await self.append(
                    "tool_result",
                    {"ok": ev.ok, "output": ev.text[:OUTPUT_CAP]},
                    key=ev.key,
                    tool_name=ev.tool_name,
                    tool_call_id=ev.tool_call_id,
                )
            elif ev.kind == "result":
                self.result = ev
                await self.append(
                    "note",
                    {"result": ev.text[:OUTPUT_CAP], "is_error": ev.is_error,
                     "details": ev.arguments or {}, "session_id": self.session_id,
                     "usage_totals": dict(self.reported)},
                    key=ev.key,
                )  # fmt: skip
        except errors.StaleLease as exc:
            self._stop_cli("lost", str(exc))

    async def usage(self, ev: Event) -> None:
        """Record reported usage in llm_calls; spend it against the budgets as it comes."""
        st = self.st
        r = self.reported
        cost: float | None
        if ev.cumulative:
            d_prompt = max(ev.prompt_tokens - int(r["prompt"]), 0)
            d_completion = max(ev.completion_tokens - int(r["completion"]), 0)
            cost = None if ev.cost_usd is None else max(ev.cost_usd - float(r["cost"]), 0.0)
        else:
            d_prompt, d_completion, cost = ev.prompt_tokens, ev.completion_tokens, ev.cost_usd
        model = ev.model or self.model
        # a CLI that reports tokens but no cost (Codex): priced from litellm's cost map
        d_cost = cost if cost is not None else _estimate(model, d_prompt, d_completion)
        r["prompt"] += int(d_prompt)
        r["completion"] += int(d_completion)
        r["cost"] += float(d_cost)
        if not (d_prompt or d_completion or d_cost):
            return
        async with st.kernel.connection() as conn:
            await record_call(
                conn, agent=st.agent, role=st.role.name, task_id=st.task.id,
                model=model, prompt_tokens=int(d_prompt),
                completion_tokens=int(d_completion), cost_usd=float(d_cost), latency_ms=0,
                outcome="ok",
            )  # fmt: skip
        if d_cost <= 0 or self.abort is not None:
            if d_cost > 0:
                self.unaccounted += float(d_cost)
            return
        try:
            async with st.kernel.connection() as conn:
                spent: Reservation = await reserve(conn, self.scopes, float(d_cost), ttl=60)
                await settle(conn, spent, float(d_cost))
        except BudgetExceeded as exc:
            self.unaccounted += float(d_cost)
            self._stop_cli(
                "budget",
                f"{exc} (the {self.adapter.name} executor reported ${r['cost']:.4f} and was "
                "killed)",
            )

    def _stop_cli(self, why: str, detail: str) -> None:
        if self.abort is None:
            self.abort = (why, detail)
        if self.proc is not None:
            process.kill(self.proc)

    # ---------------------------------------------------------------- done --
    async def finish(self, summary: str) -> StageOutcome:
        """The CLI ended well: for a work stage, hand the task to review."""
        return await self.hand_to_review(summary)

    async def hand_to_review(self, summary: str) -> StageOutcome:
        """Commit what the CLI left and submit the task for review with its summary."""
        st = self.st
        excludes = [f":(exclude){p}" for p in (".agentos", *self.adapter.ignore)]
        try:
            await git(st.worktree, "add", "-A", "--", ".", *excludes)
            staged = await git(st.worktree, "diff", "--cached", "--quiet", check=False)
            if staged.code != 0:
                title = st.task.title.splitlines()[0][:72]
                await git(
                    st.worktree, "commit", "--quiet",
                    f"--author={st.agent} <{st.agent}@agentos.local>",
                    "-m", f"task #{st.task.id}: {title}",
                    "-m", f"{summary[:2000]}\n\nExecutor: {self.adapter.name}",
                )  # fmt: skip
        except GitError as exc:
            return await self.block(f"could not commit the {self.adapter.name} run's work: {exc}")
        call_id = f"executor-submit-{len(self.rows)}"
        await self.append(
            "tool_call",
            {"arguments": {"summary": summary}},
            tool_name="submit_for_review",
            tool_call_id=call_id,
        )
        outcome = await self.end_with(
            terminal.ACTIONS["submit_for_review"], {"summary": summary}, call_id
        )
        if outcome is not None:
            return outcome
        why = self.rows[-1].content.get("output", "refused") if self.rows else "refused"
        return await self.block(f"the {self.adapter.name} run could not go to review: {why}")

    async def block(self, reason: str) -> StageOutcome:
        """Block the task for a person (reason redacted)."""
        return await terminal.block(self.context(), self.redact(reason)[:2000])


class ExecutorReview(ExecutorRun):
    """One executor run of a review stage: the check ran before it; its final message
    carries a verdict, applied through the same terminal actions as the builtin
    reviewer's (approve merges, reject sends the feedback back)."""

    instructions = EXECUTOR_REVIEW_SYSTEM

    async def finish(self, summary: str) -> StageOutcome:
        st = self.st
        # a reviewer does not change the work: whatever the CLI left is thrown away, so
        # what is merged is exactly what the worker submitted
        try:
            await git(st.worktree, "reset", "--hard", "--quiet", "HEAD")
            await git(st.worktree, "clean", "-fdq", "-e", ".agentos", *[
                arg for p in self.adapter.ignore for arg in ("-e", p)
            ])  # fmt: skip
        except GitError as exc:
            return await self.block(f"could not restore the worktree after review: {exc}")
        verdict = parse_verdict(summary)
        if verdict is None:
            return await self.block(
                f"the {self.adapter.name} reviewer gave no verdict (a last line "
                '{"verdict": "approve"|"reject", ...}); its final message: ' + summary[:1500]
            )
        name, text = verdict
        call_id = f"executor-{name}-{len(self.rows)}"
        args = {"comment": text} if name == "approve" else {"feedback": text}
        await self.append("tool_call", {"arguments": args}, tool_name=name, tool_call_id=call_id)
        outcome = await self.end_with(terminal.ACTIONS[name], args, call_id)
        if outcome is not None:
            return outcome
        why = self.rows[-1].content.get("output", "refused") if self.rows else "refused"
        return await self.block(f"the {self.adapter.name} reviewer's {name} was refused: {why}")


def _estimate(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    """The cost of tokens in litellm's cost map; 0 for a model it does not know."""
    if not (prompt_tokens or completion_tokens):
        return 0.0
    try:
        from agentos.agents.llm import ensure_litellm

        p, c = ensure_litellm().cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
        return float(p) + float(c)
    except Exception:
        return 0.0


def _call_hint(ev: Event) -> str:
    args = ev.arguments
    first = ""
    if isinstance(args, dict) and args:
        first = str(next(iter(args.values()), ""))
    elif isinstance(args, str):
        first = args
    hint = first.splitlines()[0][:60] if first else ""
    return f"{ev.tool_name}({hint})" if hint else str(ev.tool_name)


def _readable(binary: str) -> list[Path]:
    """The CLI's install tree and its script's interpreter, bound back read-only should
    they lie under a hidden path (a venv's Python under the user's home, say)."""
    out: list[Path] = []
    real = Path(os.path.realpath(binary))
    out.append(_install_root(real))
    try:
        with open(real, "rb") as f:
            first = f.readline(512)
    except OSError:
        return out
    if first.startswith(b"#!"):
        parts = first[2:].decode(errors="replace").split()
        if parts and parts[0] != "/usr/bin/env":
            out.append(_install_root(Path(os.path.realpath(parts[0]))))
    return out


def _install_root(real: Path) -> Path:
    for parent in real.parents:
        if parent.name in ("node_modules", "bin") and parent.parent != parent:
            return parent.parent
    return real.parent


__all__ = ["EXECUTOR_SYSTEM", "ExecutorRun", "run_work_stage"]
