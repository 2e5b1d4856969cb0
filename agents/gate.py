"""The merge gate: whether an approved review merges now or waits for a person.

`decide()` is a pure function of the review role's configuration, the task and the
branch's diff numstat:

1. the task's own approval (`agentos task create --approval human|auto`, inherited by
   subtasks from their goal) beats the role: `human` waits, `auto` merges;
2. the review role's `merge: human` waits;
3. `merge: auto` merges, unless a tier holds it: more changed lines (added + deleted)
   than `auto_merge_max_lines` (a binary file cannot be measured, so it holds too), or
   a changed file that matches none of `auto_merge_paths` (fnmatch globs, `*` also
   matches `/`: `docs/*`, `*.md`).

The reviewer's approve asks `check()` before merging; when the gate holds, `hold()`
moves the task to `approval` with the review's comment, the reason and the diffstat
(kernel/approvals.py) and nothing is merged. `approve()` and `reject()` are
what a person runs (`agentos task approve|reject`): the merge is the reviewer's own
plumbing merge (Workspace.merge), done while the task's row is locked, so the merge
and its record commit together or not at all.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from agentos.agents.config import RoleConfig
from agentos.agents.workspace import BaseBranchBusy, FileChange, GitError, Workspace, branch_name
from agentos.kernel import approvals, errors, tasks
from agentos.kernel.db import Kernel
from agentos.kernel.models import Task, TaskStatus

MAX_LISTED = 20  # files kept in the diffstat of a held merge


@dataclass(frozen=True)
class Decision:
    """Merge now (True) or wait for a person (False), and why."""

    merge: bool
    reason: str


@dataclass(frozen=True)
class Gate:
    """A decision and the numstat it was made on."""

    decision: Decision
    changes: list[FileChange]


def changed_lines(changes: list[FileChange]) -> int:
    """Lines added plus lines deleted (binary files count 0)."""
    return sum((c.added or 0) + (c.deleted or 0) for c in changes)


def decide(role: RoleConfig, task: Task, changes: list[FileChange]) -> Decision:
    """Whether the approved branch of `task` merges now under `role`'s gate."""
    if task.approval == "human":
        return Decision(False, "the task asks for a person's approval (approval: human)")
    if task.approval == "auto":
        return Decision(True, "the task allows an automatic merge (approval: auto)")
    if role.merge == "human":
        return Decision(
            False, f"the {role.name} role merges with a person's approval (merge: human)"
        )
    lines = changed_lines(changes)
    if role.auto_merge_max_lines is not None:
        binary = [c.path for c in changes if c.added is None or c.deleted is None]
        if binary:
            return Decision(
                False,
                f"binary files changed ({_some(binary)}); auto_merge_max_lines cannot measure them",
            )
        if lines > role.auto_merge_max_lines:
            return Decision(
                False,
                f"{lines} lines changed; merge: auto allows at most "
                f"{role.auto_merge_max_lines} (auto_merge_max_lines)",
            )
    if role.auto_merge_paths:
        outside = [
            c.path
            for c in changes
            if not any(fnmatch.fnmatchcase(c.path, glob) for glob in role.auto_merge_paths)
        ]
        if outside:
            return Decision(
                False,
                f"changes outside auto_merge_paths ({', '.join(role.auto_merge_paths)}): "
                f"{_some(outside)}",
            )
    return Decision(True, f"{lines} lines in {len(changes)} files: within merge: auto")


def _some(paths: list[str], n: int = 5) -> str:
    return ", ".join(paths[:n]) + (f" and {len(paths) - n} more" if len(paths) > n else "")


def diffstat(changes: list[FileChange]) -> dict[str, Any]:
    """The numbers a person sees beside a held merge (stored in metadata.approval)."""
    return {
        "files": len(changes),
        "added": sum(c.added or 0 for c in changes),
        "deleted": sum(c.deleted or 0 for c in changes),
        "changes": [
            {"path": c.path, "added": c.added, "deleted": c.deleted} for c in changes[:MAX_LISTED]
        ],
    }


def describe_diffstat(stat: dict[str, Any]) -> str:
    """`3 files, +40 -2`."""
    n = stat.get("files") or 0
    return f"{n} file{'s' if n != 1 else ''}, +{stat.get('added') or 0} -{stat.get('deleted') or 0}"


async def check(workspace: Workspace, role: RoleConfig, task: Task) -> Gate:
    """The gate's decision on the task's branch as it stands, with its numstat."""
    try:
        changes: list[FileChange] | None = await workspace.numstat(task.id)
    except GitError as exc:
        changes, why = None, str(exc)
    decision = decide(role, task, changes or [])
    if (
        changes is None
        and decision.merge
        and (role.auto_merge_max_lines is not None or role.auto_merge_paths)
    ):
        decision = Decision(False, f"the branch's changes could not be measured ({why})")
    return Gate(decision, changes or [])


async def hold(kernel: Kernel, task: Task, gate_: Gate, *, actor: str, comment: str) -> Task:
    """The task waits in `approval` with the review's comment and the diffstat
    (lease-checked: StaleLease when the review was taken away)."""
    async with kernel.connection() as conn:
        return await approvals.hold(
            conn, task, actor=actor, comment=comment, reason=gate_.decision.reason,
            diffstat=diffstat(gate_.changes),
        )  # fmt: skip


async def approve(
    kernel: Kernel,
    workspace: Workspace,
    task_id: int,
    *,
    actor: str,
    budget_usd: float | None = None,
) -> Task:
    """A person's approval: merge a held branch and finish its task, or (with
    `budget_usd`) put a task blocked on its budget back to work with that budget."""
    if budget_usd is not None:
        async with kernel.connection() as conn:
            task = await tasks.get_task(conn, task_id)
            if task.status == TaskStatus.approval:
                raise errors.InvalidTransition(
                    f"task {task_id} waits for its merge to be approved, not for a budget; "
                    "approve it without --budget (nothing changed)"
                )
            if not approvals.waits_on_budget(task):
                raise errors.InvalidTransition(
                    f"task {task_id} is {task.status}, not blocked on its budget; --budget "
                    "approves a task whose budget ran out (nothing changed)"
                )
            return await tasks.retry(
                conn, task_id, actor=actor, budget_usd=budget_usd,
                reason=f"budget approved by {actor}: ${budget_usd:g}",
            )  # fmt: skip
    async with kernel.connection() as conn, conn.transaction():
        task = await approvals.lock_for_decision(conn, task_id)
        approvals.refuse_unless_waiting(task, "approve")
        try:
            commit = await workspace.merge(
                kernel, task.id, task.title, then=f"`agentos task approve {task.id}` again"
            )
        except BaseBranchBusy as exc:
            raise errors.KernelError(f"task {task.id} still waits: {exc}") from None
        except GitError as exc:
            raise errors.KernelError(
                f"task {task.id} still waits: could not merge ({exc}); send it back with "
                f"`agentos task reject {task.id} --feedback ...` to have it brought up to "
                f"date with {workspace.base_branch}"
            ) from None
        return await approvals.record_approved_merge(
            conn,
            task,
            actor=actor,
            commit=commit,
            branch=branch_name(task.id),
            base=workspace.base_branch,
        )


async def reject(kernel: Kernel, task_id: int, *, actor: str, feedback: str) -> Task:
    """A person sends held work back to its worker; the feedback is in its next prompt."""
    async with kernel.connection() as conn:
        return await approvals.reject(conn, task_id, actor=actor, feedback=feedback)
