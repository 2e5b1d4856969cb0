"""Terminal actions: how a stage ends, always through the kernel's transition function."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from agentos.agents.loop import StageOutcome
from agentos.agents.workspace import BaseBranchBusy, GitError, Workspace, branch_name
from agentos.kernel import errors, tasks
from agentos.kernel.models import TaskStatus

if TYPE_CHECKING:
    from agentos.agents.loop import Loop

log = logging.getLogger(__name__)
UNFINISHED = {TaskStatus.inbox, TaskStatus.assigned, TaskStatus.in_progress, TaskStatus.review}


class Actions:
    """Performs terminal actions for a stage."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    async def perform(
        self, loop: Loop, name: str, args: dict[str, Any], call_id: str
    ) -> StageOutcome | None:
        """Run an action; None when it was refused (the model gets an error and goes on)."""
        text = str(next(iter(args.values()), "") if args else "").strip()
        if not text:
            await loop.record_result(
                call_id, name, False, f"error: {name} needs a non-empty argument"
            )
            return None
        handler = getattr(self, f"_{name}")
        try:
            result: StageOutcome | None = await handler(loop, text, call_id)
            return result
        except errors.StaleLease as exc:
            return StageOutcome("lost", str(exc))

    async def _transition(self, loop: Loop, to: TaskStatus, **kw: Any) -> None:
        st = loop.st
        async with st.kernel.connection() as conn:
            await tasks.transition(
                conn, st.task.id, to, actor=st.agent, token=st.task.lease_token, **kw
            )

    async def _submit_for_review(
        self, loop: Loop, summary: str, call_id: str
    ) -> StageOutcome | None:
        st = loop.st
        dirty = await self.workspace.dirty(st.task.id)
        if dirty:
            await loop.record_result(
                call_id,
                "submit_for_review",
                False,
                "error: uncommitted changes; commit them with git_commit first:\n" + dirty,
            )
            return None
        if st.refs_before is not None:
            undone = await self.workspace.undo_foreign_moves(st.task.id, st.refs_before)
            if undone:
                await loop.record_result(
                    call_id, "submit_for_review", False, "refused: refs moved outside review"
                )
                return await self.block(loop, self.workspace.foreign_moves_reason(undone))
        try:
            await self.workspace.publish(st.task.id)
        except GitError as exc:
            await loop.record_result(call_id, "submit_for_review", False, f"error: {exc}")
            return None
        await loop.record_result(call_id, "submit_for_review", True, "submitted for review")
        async with st.kernel.connection() as conn:
            await tasks.submit_for_review(
                conn, st.task, actor=st.agent, branch=branch_name(st.task.id), summary=summary
            )
        return StageOutcome("submit_for_review", summary)

    async def _approve(self, loop: Loop, comment: str, call_id: str) -> StageOutcome | None:
        st = loop.st
        base = self.workspace.base_branch
        try:
            commit = await self.workspace.merge(st.kernel, st.task.id, st.task.title)
        except BaseBranchBusy as exc:
            # not the worker's fault and nothing a rejection could fix: wait for a person
            await loop.record_result(call_id, "approve", False, f"merge refused: {exc}")
            reason = f"approved by {st.agent}, but the merge waits: {exc}"
            try:
                async with st.kernel.connection() as conn:
                    await tasks.block_in_review(conn, st.task, actor=st.agent, reason=reason)
            except errors.StaleLease as lost:
                return StageOutcome("lost", str(lost))
            return StageOutcome("blocked", reason)
        except GitError as exc:
            return await self._reject(
                loop, f"could not merge: {exc}; bring the branch up to date with {base}", call_id
            )
        await loop.record_result(call_id, "approve", True, f"merged as {commit[:12]}")
        async with st.kernel.connection() as conn:
            await tasks.record_merge(
                conn,
                st.task,
                actor=st.agent,
                commit=commit,
                branch=branch_name(st.task.id),
                base=base,
                comment=comment,
            )
        return StageOutcome("approve", comment)

    async def _reject(self, loop: Loop, feedback: str, call_id: str) -> StageOutcome | None:
        st = loop.st
        worker = (st.task.metadata or {}).get("worker")
        await loop.record_result(call_id, "reject", True, "sent back with feedback")
        async with st.kernel.connection() as conn:
            after = await tasks.reject(
                conn,
                st.task,
                actor=st.agent,
                feedback=feedback,
                max_rejections=st.role.max_rejections,
                worker=worker,
            )
        if after.status == TaskStatus.blocked:
            return StageOutcome("blocked", feedback)
        return StageOutcome("reject", feedback)

    async def _plan_done(self, loop: Loop, summary: str, call_id: str) -> StageOutcome | None:
        st = loop.st
        async with st.kernel.connection() as conn:
            children = await tasks.list_tasks(conn, parent_id=st.task.id)
        waiting = [c for c in children if c.status in UNFINISHED]
        if not children:
            await loop.record_result(
                call_id, "plan_done", False, "error: create the subtasks first (create_subtask)"
            )
            return None
        if not waiting:
            await loop.record_result(
                call_id,
                "plan_done",
                False,
                "error: no subtask is pending; call complete_goal or plan more",
            )
            return None
        await loop.record_result(
            call_id, "plan_done", True, f"waiting for {', '.join('#%d' % c.id for c in waiting)}"
        )
        async with st.kernel.connection() as conn:
            await tasks.wait_for_subtasks(
                conn, st.task, actor=st.agent, subtask_ids=[c.id for c in waiting], summary=summary
            )
        return StageOutcome("plan_done", summary)

    async def _complete_goal(self, loop: Loop, summary: str, call_id: str) -> StageOutcome | None:
        st = loop.st
        async with st.kernel.connection() as conn:
            children = await tasks.list_tasks(conn, parent_id=st.task.id)
        open_ = [c for c in children if c.status != TaskStatus.done]
        if open_:
            await loop.record_result(
                call_id,
                "complete_goal",
                False,
                "error: not done yet: " + ", ".join(f"#{c.id} [{c.status}]" for c in open_),
            )
            return None
        await loop.record_result(call_id, "complete_goal", True, "goal complete")
        await self._transition(
            loop, TaskStatus.done, result=summary, reason=f"goal completed by {st.agent}"
        )
        return StageOutcome("complete_goal", summary)

    async def _block(self, loop: Loop, reason: str, call_id: str) -> StageOutcome | None:
        await loop.record_result(call_id, "block", True, "blocked")
        return await self.block(loop, reason, record=False)

    async def block(self, loop: Loop, reason: str, record: bool = True) -> StageOutcome:
        """Block the task for a human with a reason."""
        st = loop.st
        try:
            await self._transition(
                loop, TaskStatus.blocked, error=reason, reason=f"blocked by {st.agent}: {reason}"
            )
        except errors.StaleLease as exc:
            return StageOutcome("lost", str(exc))
        return StageOutcome("blocked", reason)

    async def release(self, loop: Loop, reason: str) -> StageOutcome:
        """Give the task back (e.g. no model answers); it is ready again at once."""
        st = loop.st
        try:
            async with st.kernel.connection() as conn:
                await tasks.release(conn, st.task, reason=reason)
        except errors.StaleLease as exc:
            return StageOutcome("lost", str(exc))
        return StageOutcome("released", reason)
