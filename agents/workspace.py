"""The workspace: one git repository; each task works in its own worktree.

The repository at AGENTOS_WORKSPACE (default AGENTOS_HOME/workspace) has `main` checked
out; a task's worktree is AGENTOS_HOME/worktrees/task-<id> on branch agentos/task-<id>,
created from main the first time and reused afterwards (an agent that takes a task
over continues from the committed work). The reviewer merges a branch into main under
a PostgreSQL advisory lock, so concurrent approvals never race on the main checkout.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from agentos.kernel.db import Kernel

log = logging.getLogger(__name__)

BASE_BRANCH = "main"
MERGE_LOCK_KEY = 0x6D65726765  # "merge"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "agentos",
    "GIT_AUTHOR_EMAIL": "agentos@agentos.local",
    "GIT_COMMITTER_NAME": "agentos",
    "GIT_COMMITTER_EMAIL": "agentos@agentos.local",
    "GIT_TERMINAL_PROMPT": "0",
}


class GitError(Exception):
    """A git command failed; str() is its one-line reason."""


@dataclass(frozen=True)
class GitResult:
    """Exit code and combined output of a git command."""

    code: int
    output: str


async def git(cwd: Path, *args: str, check: bool = True) -> GitResult:
    """Run git in cwd."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    code = proc.returncode if proc.returncode is not None else -1
    if check and code != 0:
        last = text.strip().splitlines()[-1] if text.strip() else f"exit {code}"
        raise GitError(f"git {' '.join(args[:2])}: {last}")
    return GitResult(code, text)


def branch_name(task_id: int) -> str:
    """The branch a task works on."""
    return f"agentos/task-{task_id}"


class Workspace:
    """The repository and its task worktrees."""

    def __init__(self, repo: Path, worktrees: Path) -> None:
        self.repo = repo
        self.worktrees = worktrees
        self._lock = asyncio.Lock()

    async def ensure(self) -> Workspace:
        """Create the repository (with an initial commit on main) if it does not exist."""
        self.repo.mkdir(parents=True, exist_ok=True)
        self.worktrees.mkdir(parents=True, exist_ok=True)
        if not (self.repo / ".git").exists():
            await git(self.repo, "init", "-q", "-b", BASE_BRANCH)
            (self.repo / "README.md").write_text(
                "# Workspace\n\nThe repository an AgentOS team works on.\n"
            )
            (self.repo / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n.agentos/\n")
            await git(self.repo, "add", "-A")
            await git(self.repo, "commit", "-q", "-m", "Initial commit")
        return self

    def path(self, task_id: int) -> Path:
        """Where the task's worktree lives."""
        return self.worktrees / f"task-{task_id}"

    async def worktree(self, task_id: int) -> Path:
        """The task's worktree, created on first use."""
        path = self.path(task_id)
        branch = branch_name(task_id)
        async with self._lock:
            if (path / ".git").exists():
                return path
            await git(self.repo, "worktree", "prune", check=False)
            exists = (
                await git(
                    self.repo,
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    f"refs/heads/{branch}",
                    check=False,
                )
            ).code == 0
            if exists:
                await git(self.repo, "worktree", "add", "-q", str(path), branch)
            else:
                await git(self.repo, "worktree", "add", "-q", "-b", branch, str(path), BASE_BRANCH)
        return path

    async def dirty(self, task_id: int) -> str:
        """Uncommitted changes in the task's worktree ('' when clean)."""
        return (await git(self.path(task_id), "status", "--porcelain")).output.strip()

    async def diff(self, task_id: int) -> str:
        """The branch's changes against main."""
        return (await git(self.path(task_id), "diff", f"{BASE_BRANCH}...HEAD")).output

    async def merge(self, kernel: Kernel, task_id: int, title: str) -> str:
        """Merge the task's branch into main; returns the merge commit. GitError on conflict."""
        branch = branch_name(task_id)
        conn = await kernel.connect(autocommit=True)
        try:
            await conn.execute("SELECT pg_advisory_lock(%s)", (MERGE_LOCK_KEY,))
            try:
                res = await git(
                    self.repo,
                    "merge",
                    "--no-ff",
                    "--no-edit",
                    "-m",
                    f"Merge task #{task_id}: {title}",
                    branch,
                    check=False,
                )
                if res.code != 0:
                    await git(self.repo, "merge", "--abort", check=False)
                    last = res.output.strip().splitlines()[-1] if res.output.strip() else "failed"
                    raise GitError(f"merge of {branch} into {BASE_BRANCH} failed: {last}")
                return (await git(self.repo, "rev-parse", "HEAD")).output.strip()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (MERGE_LOCK_KEY,))
        finally:
            await conn.close()
