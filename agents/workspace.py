"""The workspace: one git repository; each task works in its own worktree.

The repository at AGENTOS_WORKSPACE (default AGENTOS_HOME/workspace) has `main` checked
out; a task's worktree is AGENTOS_HOME/worktrees/task-<id> on branch agentos/task-<id>,
created from main the first time and reused afterwards (an agent that takes a task
over continues from the committed work). The reviewer merges a branch into main under
a PostgreSQL advisory lock, so concurrent approvals never race on the main checkout.

With AGENTOS_WORKSPACE_REMOTE (a git URL) processes on different machines (pods) share
work through that remote: the workspace is a clone, worktrees start from the published
branch or origin/main, a worker publishes its branch when it hands the task to review,
and the reviewer merges the fetched branch onto the newest origin/main and pushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
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
    """The repository and its task worktrees (optionally shared through a git remote)."""

    def __init__(
        self,
        repo: Path,
        worktrees: Path,
        remote: str | None = None,
        *,
        kernel: Kernel | None = None,
    ) -> None:
        self.repo = repo
        self.worktrees = worktrees
        self.remote = remote
        self.kernel = kernel
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        """Serialise git changes to the repository: in this process (asyncio lock) and
        across the processes that share it (a PostgreSQL advisory lock on its path)."""
        async with self._lock:
            if self.kernel is None:
                yield
                return
            conn = await self.kernel.connect(autocommit=True)
            try:
                key = f"agentos-workspace:{self.repo.resolve()}"
                await conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
                try:
                    yield
                finally:
                    await conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
            finally:
                await conn.close()

    async def ensure(self) -> Workspace:
        """Create the repository (initial commit on main), or clone the remote."""
        async with self._exclusive():
            return await self._ensure()

    async def _ensure(self) -> Workspace:
        self.worktrees.mkdir(parents=True, exist_ok=True)
        if self.remote and not (self.repo / ".git").exists():
            self.repo.parent.mkdir(parents=True, exist_ok=True)
            await git(self.repo.parent, "clone", "-q", self.remote, str(self.repo))
            head = await git(self.repo, "rev-parse", "--verify", "--quiet", "HEAD", check=False)
            if head.code != 0:
                raise GitError(f"the remote {self.remote} has no commits; push a main branch first")
            return self
        self.repo.mkdir(parents=True, exist_ok=True)
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

    async def _has_ref(self, ref: str) -> bool:
        res = await git(self.repo, "rev-parse", "--verify", "--quiet", ref, check=False)
        return res.code == 0

    async def worktree(self, task_id: int) -> Path:
        """The task's worktree, created on first use (from the published branch if any)."""
        path = self.path(task_id)
        branch = branch_name(task_id)
        async with self._exclusive():
            if self.remote:
                await git(self.repo, "fetch", "-q", "--prune", "origin")
            if (path / ".git").exists():
                if self.remote:  # take what another machine published, when it is newer
                    await git(path, "merge", "-q", "--ff-only", f"origin/{branch}", check=False)
                return path
            await git(self.repo, "worktree", "prune", check=False)
            published = bool(self.remote) and await self._has_ref(f"refs/remotes/origin/{branch}")
            if await self._has_ref(f"refs/heads/{branch}"):
                await git(self.repo, "worktree", "add", "-q", str(path), branch)
                if published:
                    await git(path, "merge", "-q", "--ff-only", f"origin/{branch}", check=False)
            elif published:
                await git(
                    self.repo, "worktree", "add", "-q", "-b", branch, str(path), f"origin/{branch}"
                )
            else:
                start = f"origin/{BASE_BRANCH}" if self.remote else BASE_BRANCH
                await git(self.repo, "worktree", "add", "-q", "-b", branch, str(path), start)
        return path

    async def publish(self, task_id: int) -> None:
        """Push the task's branch to the shared remote (nothing to do without one)."""
        if self.remote:
            await git(
                self.path(task_id),
                "push",
                "-q",
                "origin",
                f"HEAD:refs/heads/{branch_name(task_id)}",
            )

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
                if self.remote:
                    # merge what was published onto the newest main, then publish main
                    await git(self.repo, "fetch", "-q", "origin")
                    await git(self.repo, "checkout", "-q", BASE_BRANCH)
                    await git(self.repo, "reset", "-q", "--hard", f"origin/{BASE_BRANCH}")
                    branch = f"origin/{branch}"
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
                if self.remote:
                    await git(self.repo, "push", "-q", "origin", BASE_BRANCH)
                return (await git(self.repo, "rev-parse", "HEAD")).output.strip()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (MERGE_LOCK_KEY,))
        finally:
            await conn.close()
