"""Terminal actions: the tools that end a stage, always through the kernel's transitions.

A terminal action is a tool like the others (a pydantic input model, a function-calling
schema, one async function), listed in a role's `actions:` and checked by `load_role`
against the stage the role runs (`stage: plan | work | review`). What sets it apart is
its result: an `Ending`, which tells the loop what the model reads back and how the stage
ends. The loop alone writes steps: it records the result first, then runs the ending's
transition (which ends the lease, so nothing could be written after it).

    refused           Ending(False, "error: ...")            the stage goes on
    ends the stage    Ending(True, "submitted", then=...)    the loop records, then ends

An action never writes a step and never calls back into the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from agentos.agents import gate
from agentos.agents.workspace import BaseBranchBusy, GitError, Workspace, branch_name
from agentos.kernel import errors, tasks
from agentos.kernel.db import Kernel
from agentos.kernel.models import Task, TaskStatus
from agentos.tools.base import ToolError, ToolInput, parameters_schema, parse_arguments
from pydantic import BaseModel, Field, StringConstraints

if TYPE_CHECKING:
    from agentos.agents.config import RoleConfig

log = logging.getLogger(__name__)

UNFINISHED = {
    TaskStatus.inbox,
    TaskStatus.assigned,
    TaskStatus.in_progress,
    TaskStatus.review,
    TaskStatus.approval,  # reviewed; its merge waits for a person
}
STAGES = ("plan", "work", "review")


@dataclass
class StageOutcome:
    """How a stage ended."""

    kind: str  # action name, 'cancelled', 'lost', 'blocked', 'released'
    detail: str = ""


@dataclass(frozen=True)
class Ending:
    """A terminal action's answer: the result the model reads, then how the stage ends.

    `then` is None when the action was refused (the model reads the error and goes on);
    otherwise the loop records the result and awaits `then()` for the outcome."""

    ok: bool
    output: str
    then: Callable[[], Awaitable[StageOutcome]] | None = None


@dataclass(frozen=True)
class StageContext:
    """What a terminal action may use: the kernel, the task as claimed, the workspace."""

    kernel: Kernel
    agent: str
    task: Task
    workspace: Workspace
    max_rejections: int
    refs_before: dict[str, str] | None = None  # work stages: refs outside the task branches
    role: RoleConfig | None = None  # review stages: its merge gate (agents/gate.py)


ActionFn = Callable[[StageContext, Any], Awaitable[Ending]]


@dataclass(frozen=True)
class TerminalAction:
    """One action that ends a stage; `stages` are the stages it may end."""

    name: str
    description: str
    input_model: type[BaseModel]
    fn: ActionFn
    stages: tuple[str, ...]

    def schema(self) -> dict[str, Any]:
        """The OpenAI tools entry, as for any tool."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters_schema(self.input_model),
            },
        }

    async def run(self, ctx: StageContext, raw_args: str | dict[str, Any] | None) -> Ending:
        """Validate the arguments and run the action; bad arguments are a refusal."""
        try:
            args = parse_arguments(self.name, self.input_model, raw_args)
        except ToolError as exc:
            return Ending(False, f"error: {exc}")
        return await self.fn(ctx, args)


# ------------------------------------------------------------------ inputs --


# what a person reads: required, and not just blanks
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]


def _text(description: str) -> Any:
    return Field(description=description)


class SubmitInput(ToolInput):
    summary: Text = _text("What you did, for the reviewer.")


class BlockInput(ToolInput):
    reason: Text = _text("Why you cannot go on; a person will read it.")


class ApproveInput(ToolInput):
    comment: Text = _text("Why the work meets the acceptance criteria.")


class RejectInput(ToolInput):
    feedback: Text = _text("What the worker must change.")


class PlanDoneInput(ToolInput):
    summary: Text = _text("The plan, in a sentence.")


class CompleteGoalInput(ToolInput):
    summary: Text = _text("What was achieved.")


# ------------------------------------------------------------ the endings --


async def block(ctx: StageContext, reason: str) -> StageOutcome:
    """Block the task for a person with a reason (also how the loop stops at a limit)."""
    try:
        async with ctx.kernel.connection() as conn:
            await tasks.transition(
                conn,
                ctx.task.id,
                TaskStatus.blocked,
                actor=ctx.agent,
                token=ctx.task.lease_token,
                error=reason,
                reason=f"blocked by {ctx.agent}: {reason}",
            )
    except errors.StaleLease as exc:
        return StageOutcome("lost", str(exc))
    return StageOutcome("blocked", reason)


def _ends(fn: Callable[[], Awaitable[StageOutcome]]) -> Callable[[], Awaitable[StageOutcome]]:
    """The transition as an ending: a lease lost meanwhile is the outcome 'lost'."""

    async def then() -> StageOutcome:
        try:
            return await fn()
        except errors.StaleLease as exc:
            return StageOutcome("lost", str(exc))

    return then


# ------------------------------------------------------------ the actions --


async def _submit_for_review(ctx: StageContext, args: SubmitInput) -> Ending:
    ws = ctx.workspace
    dirty = await ws.dirty(ctx.task.id)
    if dirty:
        return Ending(
            False, "error: uncommitted changes; commit them with git_commit first:\n" + dirty
        )
    if ctx.refs_before is not None:
        undone = await ws.undo_foreign_moves(ctx.task.id, ctx.refs_before)
        if undone:
            reason = ws.foreign_moves_reason(undone)
            return Ending(
                False, "refused: refs moved outside review", _ends(lambda: block(ctx, reason))
            )
    try:
        await ws.publish(ctx.task.id)
    except GitError as exc:
        return Ending(False, f"error: {exc}")

    async def submit() -> StageOutcome:
        async with ctx.kernel.connection() as conn:
            await tasks.submit_for_review(
                conn,
                ctx.task,
                actor=ctx.agent,
                branch=branch_name(ctx.task.id),
                summary=args.summary,
            )
        return StageOutcome("submit_for_review", args.summary)

    return Ending(True, "submitted for review", _ends(submit))


async def _approve(ctx: StageContext, args: ApproveInput) -> Ending:
    ws = ctx.workspace
    base = ws.base_branch
    if ctx.role is not None:  # the merge gate: merge now, or wait for a person
        verdict = await gate.check(ws, ctx.role, ctx.task)
        if not verdict.decision.merge:

            async def held() -> StageOutcome:
                await gate.hold(
                    ctx.kernel, ctx.task, verdict, actor=ctx.agent, comment=args.comment
                )
                return StageOutcome("approval", verdict.decision.reason)

            why = verdict.decision.reason
            return Ending(True, f"approved; the merge waits for a person: {why}", _ends(held))
    try:
        commit = await ws.merge(ctx.kernel, ctx.task.id, ctx.task.title)
    except BaseBranchBusy as exc:
        # not the worker's fault and nothing a rejection could fix: wait for a person
        reason = f"approved by {ctx.agent}, but the merge waits: {exc}"

        async def wait() -> StageOutcome:
            async with ctx.kernel.connection() as conn:
                await tasks.block_in_review(conn, ctx.task, actor=ctx.agent, reason=reason)
            return StageOutcome("blocked", reason)

        return Ending(False, f"merge refused: {exc}", _ends(wait))
    except GitError as exc:
        feedback = f"could not merge: {exc}; bring the branch up to date with {base}"
        return Ending(False, f"{feedback} (sent back)", _ends(lambda: _send_back(ctx, feedback)))

    async def merged() -> StageOutcome:
        async with ctx.kernel.connection() as conn:
            await tasks.record_merge(
                conn,
                ctx.task,
                actor=ctx.agent,
                commit=commit,
                branch=branch_name(ctx.task.id),
                base=base,
                comment=args.comment,
            )
        return StageOutcome("approve", args.comment)

    return Ending(True, f"merged as {commit[:12]}", _ends(merged))


async def _send_back(ctx: StageContext, feedback: str) -> StageOutcome:
    worker = (ctx.task.metadata or {}).get("worker")
    async with ctx.kernel.connection() as conn:
        after = await tasks.reject(
            conn,
            ctx.task,
            actor=ctx.agent,
            feedback=feedback,
            max_rejections=ctx.max_rejections,
            worker=worker,
        )
    if after.status == TaskStatus.blocked:
        return StageOutcome("blocked", feedback)
    return StageOutcome("reject", feedback)


async def _reject(ctx: StageContext, args: RejectInput) -> Ending:
    return Ending(True, "sent back with feedback", _ends(lambda: _send_back(ctx, args.feedback)))


async def _plan_done(ctx: StageContext, args: PlanDoneInput) -> Ending:
    async with ctx.kernel.connection() as conn:
        children = await tasks.list_tasks(conn, parent_id=ctx.task.id)
    if not children:
        return Ending(False, "error: create the subtasks first (create_subtask)")
    waiting = [c.id for c in children if c.status in UNFINISHED]
    if not waiting:
        return Ending(False, "error: no subtask is pending; call complete_goal or plan more")

    async def wait() -> StageOutcome:
        async with ctx.kernel.connection() as conn:
            await tasks.wait_for_subtasks(
                conn, ctx.task, actor=ctx.agent, subtask_ids=waiting, summary=args.summary
            )
        return StageOutcome("plan_done", args.summary)

    return Ending(True, f"waiting for {', '.join('#%d' % i for i in waiting)}", _ends(wait))


async def _complete_goal(ctx: StageContext, args: CompleteGoalInput) -> Ending:
    async with ctx.kernel.connection() as conn:
        children = await tasks.list_tasks(conn, parent_id=ctx.task.id)
    open_ = [c for c in children if c.status != TaskStatus.done]
    if open_:
        return Ending(
            False, "error: not done yet: " + ", ".join(f"#{c.id} [{c.status}]" for c in open_)
        )

    async def done() -> StageOutcome:
        async with ctx.kernel.connection() as conn:
            await tasks.transition(
                conn,
                ctx.task.id,
                TaskStatus.done,
                actor=ctx.agent,
                token=ctx.task.lease_token,
                result=args.summary,
                reason=f"goal completed by {ctx.agent}",
            )
        return StageOutcome("complete_goal", args.summary)

    return Ending(True, "goal complete", _ends(done))


async def _block(ctx: StageContext, args: BlockInput) -> Ending:
    return Ending(True, "blocked", _ends(lambda: block(ctx, args.reason)))


ACTIONS: dict[str, TerminalAction] = {
    a.name: a
    for a in (
        TerminalAction(
            "submit_for_review",
            "Hand the task to review (commit first).",
            SubmitInput,
            _submit_for_review,
            ("work",),
        ),
        TerminalAction(
            "block",
            "Stop: the task is blocked for a human with your reason.",
            BlockInput,
            _block,
            STAGES,
        ),
        TerminalAction(
            "approve",
            "Approve: the branch is merged into the base branch and the task is done.",
            ApproveInput,
            _approve,
            ("review",),
        ),
        TerminalAction(
            "reject",
            "Send the task back to the worker with feedback.",
            RejectInput,
            _reject,
            ("review",),
        ),
        TerminalAction(
            "plan_done",
            "The subtasks are created; the goal waits for them.",
            PlanDoneInput,
            _plan_done,
            ("plan",),
        ),
        TerminalAction(
            "complete_goal",
            "Every subtask is done: complete the goal.",
            CompleteGoalInput,
            _complete_goal,
            ("plan",),
        ),
    )
}


def check_actions(names: list[str], stage: str) -> list[str]:
    """Problems with a role's `actions:` for the stage it runs (empty when fine)."""
    problems = []
    for n in names:
        action = ACTIONS.get(n)
        if action is None:
            problems.append(f"unknown action {n!r} (known: {', '.join(sorted(ACTIONS))})")
        elif stage not in action.stages:
            problems.append(
                f"action {n!r} cannot end a {stage} stage (it ends: {', '.join(action.stages)})"
            )
    return problems


def get_actions(names: list[str]) -> dict[str, TerminalAction]:
    """The named actions (load_role has checked the names)."""
    return {n: ACTIONS[n] for n in names}


__all__ = [
    "ACTIONS",
    "Ending",
    "StageContext",
    "StageOutcome",
    "TerminalAction",
    "block",
    "check_actions",
    "get_actions",
]
