"""The reviewer's approve, behind the merge gate (agents/gate.py).

Until the terminal actions become tools (the lead is rewriting agents/actions.py), the
gate sits in front of Actions._approve here: when it holds the merge, the task waits in
`approval` for a person and nothing is merged; otherwise the approve merges as before.
Once approve is a tool, these lines move into it and this module goes away.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentos.agents import gate
from agentos.agents.actions import Actions
from agentos.agents.loop import StageOutcome
from agentos.kernel import errors

if TYPE_CHECKING:
    from agentos.agents.loop import Loop


class GatedActions(Actions):
    """Actions whose approve asks the merge gate first."""

    async def _approve(self, loop: Loop, comment: str, call_id: str) -> StageOutcome | None:
        st = loop.st
        verdict = await gate.check(self.workspace, st.role, st.task)
        if verdict.decision.merge:
            return await super()._approve(loop, comment, call_id)
        reason = verdict.decision.reason
        await loop.record_result(
            call_id, "approve", True, f"approved; the merge waits for a person: {reason}"
        )
        try:
            await gate.hold(st.kernel, st.task, verdict, actor=st.agent, comment=comment)
        except errors.StaleLease as exc:
            return StageOutcome("lost", str(exc))
        return StageOutcome("approval", reason)
