"""The durable agent loop: reason -> tool calls -> observe, every step in Postgres.

Protocol
--------
A stage (plan, work, review) of a task is one conversation stored in agentos.steps:
  seq 0      'system'      the role's system prompt
  seq 1..    'user'        a round's task prompt (a new round when the task comes back:
                           sent back by the reviewer, re-planned, re-reviewed)
             'llm'         the model's reply (text and tool calls), written before any
                           tool runs
             'tool_call'   written before the tool runs (the first call's with the
                           reply, each next one's with the result before it)
             'tool_result' written after it returns
A reply is written in the transaction that accounts for its LLM call, with its progress
note: a step of one tool call is three commits (the budget reservation, the reply, the
result).
Resuming (another agent took the task over after a lease expired) rebuilds the
messages from the rows; tool calls of the last 'llm' step without a 'tool_result' are
the only ones run again, and no completed LLM turn is paid for again. Every append
checks the lease token, so a frozen holder cannot write into the new holder's
conversation. Cancellation (NOTIFY on agentos_task) and a lost lease stop the loop
between steps. Terminal actions (agents/terminal.py: submit_for_review, approve,
reject, plan_done, complete_goal, block) are tools whose result ends the stage: the
loop records the result, then runs the action's transition through the kernel.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from agentos.agents import terminal
from agentos.agents.config import AgentSettings, RoleConfig
from agentos.agents.llm import ChatResult, LLMClient, LLMUnavailable
from agentos.agents.terminal import StageContext, StageOutcome
from agentos.agents.workspace import Workspace
from agentos.kernel import activities, errors, steps
from agentos.kernel.db import Conn, Kernel
from agentos.kernel.models import Task
from agentos.kernel.usage import BudgetExceeded
from agentos.tools.base import Tool, ToolContext

log = logging.getLogger(__name__)


@dataclass
class Stage:
    """Everything one run of the loop needs."""

    kernel: Kernel
    settings: AgentSettings
    role: RoleConfig
    agent: str
    task: Task
    stage: str
    round_key: str
    worktree: Path
    llm: LLMClient
    tools: list[Tool]
    template_vars: dict[str, Any]
    workspace: Workspace
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tool_extra: dict[str, Any] = field(default_factory=dict)
    refs_before: dict[str, str] | None = None  # work stages: refs outside the task branches


def render(name: str, roles_dirs: list[Path], **ctx: Any) -> str:
    """Render a prompt template with StrictUndefined (a missing variable is an error)."""
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader([str(d) for d in roles_dirs])]
    loaders.append(jinja2.PackageLoader("agentos.agents", "prompts"))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    return env.get_template(name).render(**ctx).strip()


def _messages(rows: list[steps.Step]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for s in rows:
        c = s.content
        if s.kind == "system":
            out.append({"role": "system", "content": c["text"]})
        elif s.kind == "user":
            out.append({"role": "user", "content": c["text"]})
        elif s.kind == "llm":
            msg: dict[str, Any] = {"role": "assistant", "content": c.get("content") or ""}
            if c.get("tool_calls"):
                msg["tool_calls"] = c["tool_calls"]
            out.append(msg)
        elif s.kind == "tool_result":
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": s.tool_call_id,
                    "name": s.tool_name,
                    "content": c.get("output", ""),
                }
            )
    return out


class Loop:
    """Runs one stage of a task to a terminal action, a limit, or a stop."""

    def __init__(self, st: Stage) -> None:
        self.st = st
        self.rows: list[steps.Step] = []
        self.by_name = {t.name: t for t in st.tools}
        self.terminal = terminal.get_actions(st.role.actions)

    def context(self) -> StageContext:
        """What the stage's terminal actions may use."""
        st = self.st
        return StageContext(
            kernel=st.kernel,
            agent=st.agent,
            task=st.task,
            workspace=st.workspace,
            max_rejections=st.role.max_rejections,
            refs_before=st.refs_before,
            role=st.role,
        )

    async def block(self, reason: str) -> StageOutcome:
        """End the stage: the task is blocked for a person with the reason."""
        return await terminal.block(self.context(), reason)

    async def end_with(
        self, action: terminal.TerminalAction, raw_args: Any, call_id: str
    ) -> StageOutcome | None:
        """Run a terminal action: record its result, then end the stage as it says
        (None when it was refused: the model reads why and goes on)."""
        try:
            ending = await action.run(self.context(), raw_args)
            await self.record_result(call_id, action.name, ending.ok, ending.output)
        except errors.StaleLease as exc:
            return StageOutcome("lost", str(exc))
        return None if ending.then is None else await ending.then()

    async def _write(
        self, conn: Conn, new: list[steps.NewStep], *, wait_for_flush: bool = False
    ) -> None:
        """Append new rows to the stage in the caller's transaction (lease checked)."""
        st = self.st
        written = await steps.append_many(
            conn,
            task_id=st.task.id,
            stage=st.stage,
            first_seq=len(self.rows),
            agent=st.agent,
            attempt=st.task.attempts,
            rows=new,
            lease_token=st.task.lease_token,
            wait_for_flush=wait_for_flush,
        )
        self.rows.extend(written)

    async def _append(
        self,
        kind: str,
        content: dict[str, Any],
        *,
        tool_name: str | None = None,
        tool_call_id: str | None = None,
        then: steps.NewStep | None = None,
    ) -> None:
        """Append one row in a transaction of its own (with `then` after it, if given)."""
        new = [steps.NewStep(kind, content, tool_name, tool_call_id)]
        async with self.st.kernel.connection() as conn:
            await self._write(conn, new if then is None else [*new, then])

    async def _record_reply(self, conn: Conn, reply: ChatResult) -> None:
        """The model's reply, the progress note and the first tool call's row, written in
        the transaction that accounts for the call (llm.chat's on_reply): one commit."""
        seq = len(self.rows)
        new = [
            steps.NewStep(
                "llm",
                {
                    "content": reply.content,
                    "tool_calls": reply.tool_calls,
                    "model": reply.model,
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                    "cost_usd": reply.cost_usd,
                },
            )
        ]
        if reply.tool_calls:
            new.append(_call_step(reply.tool_calls[0]))
        await self._write(conn, new, wait_for_flush=True)
        await self._log_turn(conn, seq, reply.content, reply.tool_calls)

    async def run(self) -> StageOutcome:
        """Resume or start the stage and run it."""
        st = self.st
        async with st.kernel.connection() as conn:
            self.rows = await steps.load(conn, st.task.id, st.stage)
        dirs = [d for d in (st.settings.home / "roles", st.settings.roles_dir) if d and d.is_dir()]
        if not self.rows:
            await self._append(
                "system", {"text": render(st.role.prompts.system, dirs, **st.template_vars)}
            )
        last_user = next((r for r in reversed(self.rows) if r.kind == "user"), None)
        if last_user is None or last_user.content.get("round") != st.round_key:
            text = render(st.role.prompts.task, dirs, **st.template_vars)
            await self._append("user", {"text": text, "round": st.round_key})
        # Resume: run the tool calls of the last reply that have no result yet.
        last_llm_idx = max((i for i, r in enumerate(self.rows) if r.kind == "llm"), default=-1)
        last_user_idx = max(i for i, r in enumerate(self.rows) if r.kind == "user")
        if last_llm_idx > last_user_idx:
            done = {r.tool_call_id for r in self.rows[last_llm_idx:] if r.kind == "tool_result"}
            pending = [
                c
                for c in self.rows[last_llm_idx].content.get("tool_calls") or []
                if c["id"] not in done
            ]
            # a call whose row was written before the stop (or crash) is not written again
            called = {
                r.tool_call_id
                for r in self.rows[last_llm_idx:]
                if r.kind == "tool_call" and r.tool_call_id is not None
            }
            if pending:
                outcome = await self._run_calls(pending, written=called)
                if outcome is not None:
                    return outcome
        iterations = sum(1 for r in self.rows[last_user_idx:] if r.kind == "llm")
        schemas = [t.schema() for t in st.tools] + [a.schema() for a in self.terminal.values()]
        while True:
            if st.stop.is_set():
                return StageOutcome("cancelled", "stopped between steps")
            if iterations >= st.role.limits.max_iterations:
                return await self.block(f"reached max iterations ({iterations})")
            try:
                reply = await st.llm.chat(
                    agent=st.agent,
                    role=st.role,
                    task_id=st.task.id,
                    messages=_messages(self.rows),
                    tools=schemas,
                    task_budget_usd=float(st.template_vars["task"].get("budget_usd") or 0) or None,
                    on_reply=self._record_reply,
                )
            except BudgetExceeded as exc:
                return await self.block(str(exc))
            except LLMUnavailable as exc:
                # every model failed after retries: usually a key or endpoint problem that
                # retrying at once cannot fix; block with the reason for a person to see
                return await self.block(f"LLM unavailable: {exc}"[:2000])
            iterations += 1
            if st.stop.is_set():
                return StageOutcome("cancelled", "stopped between steps")
            same = self._same_replies()
            if same >= st.role.limits.repeat_limit:
                return await self.block(f"the model gave the same reply {same} times; stopping")
            if not reply.tool_calls:
                if self._nudged_since_last_tool():
                    # one reminder is enough for a model that can call tools; more turns
                    # would only spend the budget on the same answer
                    text = (reply.content or "").strip().replace("\n", " ")[:300]
                    return await self.block(
                        "the model answered without calling a tool or ending the stage, "
                        f"even after a reminder; its last reply: {text or '(empty)'}",
                    )
                await self._append(
                    "user",
                    {
                        "text": "Use your tools, and end with one of: "
                        + ", ".join(st.role.actions)
                        + ".",
                        "round": st.round_key,
                        "nudge": True,
                    },
                )
                continue
            outcome = await self._run_calls(reply.tool_calls, written={reply.tool_calls[0]["id"]})
            if outcome is not None:
                return outcome
            repeated = self._repeats()
            if repeated >= st.role.limits.repeat_limit:
                return await self.block(f"repeated the same action {repeated} times; stopping")

    async def _log_turn(
        self, conn: Conn, seq: int, content: str, calls: list[dict[str, Any]]
    ) -> None:
        """One activity per LLM turn, so `agentos log --follow` shows the agents at work."""
        st = self.st
        parts = []
        for c in calls:
            fn = c.get("function", c)
            try:
                args = json.loads(fn.get("arguments") or "{}")
            except (TypeError, json.JSONDecodeError):
                args = {}
            first = next(iter(args.values()), "") if isinstance(args, dict) and args else ""
            hint = str(first).splitlines()[0][:60] if first else ""
            parts.append(f"{fn.get('name')}({hint})" if hint else str(fn.get("name")))
        text = ", ".join(parts) if parts else (content or "").strip().splitlines()[0:1]
        message = text if isinstance(text, str) else (text[0] if text else "(no reply)")
        await activities.record(
            conn,
            "agent.step",
            task_id=st.task.id,
            message=message[:300],
            data={"stage": st.stage, "seq": seq, "tools": [p.split("(")[0] for p in parts]},
            actor=st.agent,
            wait_for_flush=True,  # in the call's transaction, which waits for its flush
        )

    def _nudged_since_last_tool(self) -> bool:
        """Whether the model was already reminded to use its tools since its last call."""
        for r in reversed(self.rows):
            if r.kind == "tool_call":
                return False
            if r.kind == "user":
                return bool(r.content.get("nudge"))
        return False

    def _same_replies(self) -> int:
        """How many of the latest LLM replies in a row are identical (text and calls)."""

        def signature(r: steps.Step) -> str:
            calls = [
                (c.get("function", c).get("name"), c.get("function", c).get("arguments"))
                for c in r.content.get("tool_calls") or []
            ]
            return json.dumps([(r.content.get("content") or "").strip(), calls], sort_keys=True)

        sigs = [signature(r) for r in self.rows if r.kind == "llm"]
        n = 0
        for s in reversed(sigs):
            if s != sigs[-1]:
                break
            n += 1
        return n

    def _repeats(self) -> int:
        sigs = [
            (r.tool_name, json.dumps(r.content.get("arguments"), sort_keys=True))
            for r in self.rows
            if r.kind == "tool_call"
        ]
        if not sigs:
            return 0
        n = 1
        for s in reversed(sigs[:-1]):
            if s != sigs[-1]:
                break
            n += 1
        return n

    async def _run_calls(
        self, calls: list[dict[str, Any]], *, written: set[str] | None = None
    ) -> StageOutcome | None:
        """Run a reply's tool calls in order. A call's row is written before it runs: with
        the reply (the first), with the previous call's result, or on its own (`written`
        names the calls whose rows are there)."""
        st = self.st
        written = set(written or ())
        for i, call in enumerate(calls):
            if st.stop.is_set():
                return StageOutcome("cancelled", "stopped between steps")
            step = _call_step(call)
            name = str(step.tool_name)
            raw = call.get("function", call).get("arguments") or "{}"
            if call["id"] not in written:
                await self._append(
                    step.kind,
                    step.content,
                    tool_name=step.tool_name,
                    tool_call_id=step.tool_call_id,
                )
            action = self.terminal.get(name)
            if action is not None:
                # its result ends the stage (or is a refusal): the next call's row is
                # written only if the stage goes on (arguments: parsed, else the raw text)
                outcome = await self.end_with(action, step.content["arguments"], call["id"])
                if outcome is not None:
                    return outcome
                continue
            tool = self.by_name.get(name)
            if tool is None:
                known = ", ".join([*self.by_name, *self.terminal])
                result_ok, output = False, f"error: unknown tool {name!r}; tools: {known}"
            else:
                ctx = ToolContext(
                    kernel=st.kernel,
                    agent=st.agent,
                    role=st.role.name,
                    task_id=st.task.id,
                    worktree=st.worktree,
                    shell_timeout=st.role.limits.shell_timeout,
                    network=st.role.network,
                    allow_private_network=st.role.allow_private_network,
                    private_hosts=tuple(st.role.private_hosts),
                    extra={
                        "base_branch": st.template_vars.get("base_branch", "main"),
                        **st.tool_extra,
                    },
                )
                res = await tool.call(ctx, raw)
                result_ok, output = res.ok, res.output
            following = calls[i + 1] if i + 1 < len(calls) else None
            then = _call_step(following) if following is not None else None
            await self.record_result(call["id"], name, result_ok, output, then=then)
            if following is not None:
                written.add(following["id"])
        return None

    async def record_result(
        self, call_id: str, name: str, ok: bool, output: str, *, then: steps.NewStep | None = None
    ) -> None:
        """Write a tool result step (and the next call's row with it, if given)."""
        await self._append(
            "tool_result",
            {"ok": ok, "output": output},
            tool_name=name,
            tool_call_id=call_id,
            then=then,
        )


def _call_step(call: dict[str, Any]) -> steps.NewStep:
    """The 'tool_call' row of one of a reply's calls (its arguments parsed if they are JSON)."""
    fn = call.get("function", call)
    raw = fn.get("arguments") or "{}"
    try:
        args = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except json.JSONDecodeError:
        args = None
    return steps.NewStep(
        "tool_call",
        {"arguments": args if args is not None else raw},
        tool_name=str(fn.get("name", "")),
        tool_call_id=call["id"],
    )


__all__ = ["Loop", "Stage", "StageOutcome", "render"]
