"""The workspace: one git repository; each task works in its own worktree.

The repository at AGENTOS_WORKSPACE (default AGENTOS_HOME/workspace) may be the user's
own checkout. AgentOS never touches its working tree or index behind the user's back:

- The base branch is the repository's own: AGENTOS_BASE_BRANCH, else the branch the
  checkout has at HEAD (`master`, `trunk`, ...), else `main` for a repository AgentOS
  creates. With a remote, the remote's default branch.
- A task's worktree is AGENTOS_HOME/worktrees/task-<id> on branch agentos/task-<id>,
  created from the base branch the first time and reused afterwards (an agent that
  takes a task over continues from the committed work).
- A merge is built with plumbing (`git merge-tree --write-tree`, `git commit-tree`),
  never in a working tree, under a PostgreSQL advisory lock so concurrent approvals
  never race. The base branch then moves by compare-and-swap. Where the base branch is
  checked out (the user's checkout, or the repository AgentOS made), that checkout is
  fast-forwarded only if it has no uncommitted changes to tracked files; otherwise the
  merge is refused with the reason (`BaseBranchBusy`) and nothing moves.
- Git cannot be turned against us: every command runs with hooks disabled
  (`core.hooksPath=/dev/null`), an environment built from an allow-list, a timeout,
  and repository-local configuration that makes git execute programs (fsmonitor,
  sshCommand, filters, textconv, merge drivers, includes ...) is refused.
- Only the kernel moves the base branch. `refs_snapshot()` before a worker stage and
  `undo_foreign_moves()` after it find a base branch (or any ref outside the task
  branches) that took the task's commits without review, put it back, and report it.

With AGENTOS_WORKSPACE_REMOTE (a git URL) processes on different machines (pods) share
work through that remote: the workspace is a clone, worktrees start from the published
branch or origin/<base>, a worker publishes its branch when it hands the task to
review, and the reviewer merges the fetched branch onto the newest origin/<base> and
pushes (a push that lost a race is refused by the remote and retried by review).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from agentos.kernel.db import Kernel
from agentos.kernel.locks import advisory_lock
from agentos.tools.git import GIT_SAFE_CONFIG, dangerous_keys

log = logging.getLogger(__name__)

DEFAULT_BASE_BRANCH = "main"
GIT_TIMEOUT = 120.0
GIT_ENV = {
    "GIT_AUTHOR_NAME": "agentos",
    "GIT_AUTHOR_EMAIL": "agentos@agentos.local",
    "GIT_COMMITTER_NAME": "agentos",
    "GIT_COMMITTER_EMAIL": "agentos@agentos.local",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PAGER": "cat",
}
# What git may see of our environment: enough to find programs, speak the user's
# locale and reach a remote with the operator's SSH agent; never a provider key or
# the database URL.
ENV_ALLOW = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SSH_AUTH_SOCK", "TMPDIR")
MERGE_LOCK = "agentos-merge"


class GitError(Exception):
    """A git command failed; str() is its one-line reason."""


class BaseBranchBusy(GitError):
    """The base branch is checked out with uncommitted changes a merge would overwrite."""


@dataclass(frozen=True)
class FileChange:
    """One file a branch changes: lines added and deleted (None for a binary file)."""

    path: str
    added: int | None
    deleted: int | None


@dataclass(frozen=True)
class GitResult:
    """Exit code and combined output of a git command."""

    code: int
    output: str


def git_env() -> dict[str, str]:
    """The environment every git command AgentOS runs gets."""
    env = {k: v for k, v in os.environ.items() if k in ENV_ALLOW}
    env.setdefault("PATH", os.defpath)
    return {**env, **GIT_ENV}


async def git(cwd: Path, *args: str, check: bool = True, timeout: float = GIT_TIMEOUT) -> GitResult:
    """Run git in cwd: no hooks, allow-listed environment, killed after `timeout`."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        *GIT_SAFE_CONFIG,
        *args,
        cwd=cwd,
        env=git_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its whole process group dies on timeout or cancel
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    except (TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise GitError(f"git {' '.join(args[:2])}: timed out after {timeout:.0f} s") from None
    text = out.decode(errors="replace")
    code = proc.returncode if proc.returncode is not None else -1
    if check and code != 0:
        last = text.strip().splitlines()[-1] if text.strip() else f"exit {code}"
        raise GitError(f"git {' '.join(args[:2])}: {last}")
    return GitResult(code, text)


def branch_name(task_id: int) -> str:
    """The branch a task works on."""
    return f"agentos/task-{task_id}"


TASK_BRANCHES = "refs/heads/agentos/"


class Workspace:
    """The repository and its task worktrees (optionally shared through a git remote)."""

    def __init__(
        self,
        repo: Path,
        worktrees: Path,
        remote: str | None = None,
        *,
        kernel: Kernel | None = None,
        base_branch: str | None = None,
    ) -> None:
        self.repo = repo
        self.worktrees = worktrees
        self.remote = remote
        self.kernel = kernel
        self._configured_base = base_branch
        self.base_branch = base_branch or DEFAULT_BASE_BRANCH
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        """Serialise git changes to the repository: in this process (asyncio lock) and
        across the processes that share it (an advisory lock on its path)."""
        async with self._lock:
            if self.kernel is None:
                yield
                return
            async with advisory_lock(self.kernel, f"agentos-workspace:{self.repo.resolve()}"):
                yield

    @property
    def base_ref(self) -> str:
        """The ref merges land on: the local base branch, or the remote's."""
        return (
            f"refs/remotes/origin/{self.base_branch}"
            if self.remote
            else f"refs/heads/{self.base_branch}"
        )

    async def ensure(self) -> Workspace:
        """Create the repository (initial commit on the base branch), or clone the
        remote; find the base branch; refuse a repository that would run programs."""
        async with self._exclusive():
            await self._ensure()
        log.info("workspace %s, base branch %s", self.repo, self.base_branch)
        return self

    async def _ensure(self) -> None:
        self.worktrees.mkdir(parents=True, exist_ok=True)
        if self.remote and not (self.repo / ".git").exists():
            self.repo.parent.mkdir(parents=True, exist_ok=True)
            await git(self.repo.parent, "clone", "-q", self.remote, str(self.repo))
            head = await git(self.repo, "rev-parse", "--verify", "--quiet", "HEAD", check=False)
            if head.code != 0:
                raise GitError(f"the remote {self.remote} has no commits; push a base branch first")
        self.repo.mkdir(parents=True, exist_ok=True)
        if not (self.repo / ".git").exists():
            await git(self.repo, "init", "-q", "-b", self.base_branch)
            (self.repo / "README.md").write_text(
                "# Workspace\n\nThe repository an AgentOS team works on.\n"
            )
            (self.repo / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n.agentos/\n")
            await git(self.repo, "add", "-A")
            await git(self.repo, "commit", "-q", "-m", "Initial commit")
        await self.refuse_dangerous_config()
        self.base_branch = await self._find_base_branch()
        if not await self._has_ref(self.base_ref):
            raise GitError(
                f"the workspace {self.repo} has no branch {self.base_branch!r}; "
                "set AGENTOS_BASE_BRANCH to the branch the team should merge into"
            )

    async def _find_base_branch(self) -> str:
        if self._configured_base:
            return self._configured_base
        if self.remote:
            res = await git(
                self.repo, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD", check=False
            )
            if res.code == 0:
                return res.output.strip().removeprefix("refs/remotes/origin/")
            return DEFAULT_BASE_BRANCH
        res = await git(self.repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        if res.code != 0:
            raise GitError(
                f"the workspace {self.repo} has a detached HEAD; "
                "set AGENTOS_BASE_BRANCH to the branch the team should merge into"
            )
        return res.output.strip()

    async def refuse_dangerous_config(self) -> None:
        """GitError when the repository's own config would make git run a program."""
        res = await git(self.repo, "config", "--local", "--list", "--name-only", check=False)
        bad = dangerous_keys(res.output)
        if bad:
            raise GitError(
                f"the workspace {self.repo} has git config that runs programs "
                f"({', '.join(bad)}); AgentOS refuses to work on it until it is removed"
            )

    def path(self, task_id: int) -> Path:
        """Where the task's worktree lives."""
        return self.worktrees / f"task-{task_id}"

    async def _has_ref(self, ref: str) -> bool:
        res = await git(self.repo, "rev-parse", "--verify", "--quiet", ref, check=False)
        return res.code == 0

    async def _rev(self, ref: str) -> str:
        return (await git(self.repo, "rev-parse", "--verify", f"{ref}^{{commit}}")).output.strip()

    async def worktree(self, task_id: int) -> Path:
        """The task's worktree, created on first use (from the published branch if any)."""
        path = self.path(task_id)
        branch = branch_name(task_id)
        async with self._exclusive():
            await self.refuse_dangerous_config()
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
                await git(
                    self.repo, "worktree", "add", "-q", "-b", branch, str(path), self.base_ref
                )
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
        """The branch's changes against the base branch."""
        return (await git(self.path(task_id), "diff", f"{self.base_ref}...HEAD")).output

    async def numstat(self, task_id: int) -> list[FileChange]:
        """What the task's branch changes against the base branch, file by file
        (`git diff --numstat` from their merge base to the branch's tip)."""
        branch = branch_name(task_id)
        if self.remote:
            async with self._exclusive():
                await git(self.repo, "fetch", "-q", "origin")
            tip = f"refs/remotes/origin/{branch}"
        else:
            tip = f"refs/heads/{branch}"
        out = (
            await git(
                self.repo, "diff", "--numstat", "-z", "--no-renames", f"{self.base_ref}...{tip}"
            )
        ).output
        changes: list[FileChange] = []
        for entry in out.split("\0"):
            added, _, rest = entry.partition("\t")
            deleted, _, path = rest.partition("\t")
            if not path:
                continue
            changes.append(
                FileChange(
                    path=path,
                    added=int(added) if added.isdigit() else None,
                    deleted=int(deleted) if deleted.isdigit() else None,
                )
            )
        return changes

    async def read_config(self, name: str) -> str | None:
        """A file from the committed base branch (None when it has no such file)."""
        res = await git(self.repo, "show", f"{self.base_ref}:{name}", check=False)
        return res.output if res.code == 0 else None

    async def _checkouts_of(self, ref: str) -> list[Path]:
        """Working trees that have `ref` checked out (the main one included)."""
        out = (await git(self.repo, "worktree", "list", "--porcelain")).output
        paths: list[Path] = []
        current: Path | None = None
        for line in out.splitlines():
            if line.startswith("worktree "):
                current = Path(line.removeprefix("worktree "))
            elif line == f"branch {ref}" and current is not None:
                paths.append(current)
        return paths

    async def _tracked_changes(self, checkout: Path) -> list[str]:
        res = await git(checkout, "status", "--porcelain", "--untracked-files=no")
        return [ln[3:] for ln in res.output.splitlines() if ln.strip()]

    async def merge(
        self, kernel: Kernel, task_id: int, title: str, *, then: str | None = None
    ) -> str:
        """Merge the task's branch onto the base branch; returns the commit the base
        branch now points at. GitError on conflict, BaseBranchBusy when the base branch
        is checked out with uncommitted changes (then nothing moved; `then` is the
        command its message tells a person to run once they are cleaned up)."""
        branch = branch_name(task_id)
        async with advisory_lock(kernel, MERGE_LOCK), self._exclusive():
            await self.refuse_dangerous_config()
            if self.remote:
                await git(self.repo, "fetch", "-q", "origin")
                tip_ref = f"refs/remotes/origin/{branch}"
            else:
                tip_ref = f"refs/heads/{branch}"
            old = await self._rev(self.base_ref)
            tip = await self._rev(tip_ref)
            ancestor = await git(self.repo, "merge-base", "--is-ancestor", tip, old, check=False)
            if ancestor.code == 0:
                # already on the base branch (a reviewer died after merging): merging
                # again would only add an empty commit
                return old
            res = await git(
                self.repo, "merge-tree", "--write-tree", "--name-only", old, tip, check=False
            )
            if res.code != 0:
                lines = res.output.strip().splitlines()
                files = [
                    ln for ln in lines[1:] if ln and not ln.startswith(("Auto-merging", "CONFLICT"))
                ]
                detail = ", ".join(files[:10]) or (lines[-1] if lines else "failed")
                raise GitError(
                    f"merge of {branch} into {self.base_branch} has conflicts in: {detail}"
                )
            tree = res.output.splitlines()[0].strip()
            commit = (
                await git(
                    self.repo,
                    "commit-tree",
                    tree,
                    "-p",
                    old,
                    "-p",
                    tip,
                    "-m",
                    f"Merge task #{task_id}: {title}",
                )
            ).output.strip()
            if self.remote:
                await git(
                    self.repo, "push", "-q", "origin", f"{commit}:refs/heads/{self.base_branch}"
                )
                await git(self.repo, "update-ref", self.base_ref, commit, old)
            else:
                await self._move_local_base(
                    commit, old, task_id, then or f"`agentos task retry {task_id}`"
                )
            now = await self._rev(self.base_ref)
            if now != commit:
                raise GitError(f"{self.base_branch} is at {now[:12]}, not the merge {commit[:12]}")
            return commit

    async def _move_local_base(self, commit: str, old: str, task_id: int, then: str) -> None:
        ref = self.base_ref
        checkouts = await self._checkouts_of(ref)
        for checkout in checkouts:
            changed = await self._tracked_changes(checkout)
            if changed:
                shown = ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else "")
                raise BaseBranchBusy(
                    f"{self.base_branch} is checked out at {checkout} with uncommitted "
                    f"changes ({shown}); AgentOS does not touch them: commit or stash them, "
                    f"then {then}"
                )
        if not checkouts:
            await git(
                self.repo, "update-ref", "-m", f"agentos: merge task #{task_id}", ref, commit, old
            )
            return
        # A clean checkout of the base branch follows it, as `git pull` would: its
        # files change only where the merge changed them, and git itself refuses if
        # an untracked file would be overwritten.
        first, *rest = checkouts
        res = await git(first, "merge", "-q", "--ff-only", commit, check=False)
        if res.code != 0:
            last = res.output.strip().splitlines()[-1] if res.output.strip() else "failed"
            raise BaseBranchBusy(
                f"{self.base_branch} is checked out at {first} and cannot follow the merge "
                f"({last}); AgentOS changed nothing: clean it up, then "
                f"{then}"
            )
        for checkout in rest:  # the same branch in a second worktree (git allows --force)
            await git(checkout, "reset", "-q", "--keep", commit, check=False)

    async def refs_snapshot(self) -> dict[str, str]:
        """Every ref but the task branches and remote-tracking refs: ref -> commit."""
        out = (await git(self.repo, "for-each-ref", "--format=%(refname) %(objectname)")).output
        refs: dict[str, str] = {}
        for line in out.splitlines():
            name, _, oid = line.partition(" ")
            if name.startswith((TASK_BRANCHES, "refs/remotes/")):
                continue
            refs[name] = oid
        return refs

    async def undo_foreign_moves(self, task_id: int, before: dict[str, str]) -> list[str]:
        """After a worker stage: put back every ref that took the task's commits without
        review (the base branch, a tag, another branch); returns what was undone.

        A ref a person moved meanwhile (commits that are not the task's) is left alone.
        """
        after = await self.refs_snapshot()
        branch_tip = await git(
            self.repo,
            "rev-parse",
            "--verify",
            "--quiet",
            f"refs/heads/{branch_name(task_id)}",
            check=False,
        )
        undone: list[str] = []
        for ref, new in after.items():
            old = before.get(ref)
            if new == old:
                continue
            if not await self._holds_task_work(new, old, task_id, branch_tip.output.strip()):
                continue
            if old is None:
                await git(self.repo, "update-ref", "-d", ref, new)
            else:
                checkouts = await self._checkouts_of(ref)
                if checkouts:
                    await git(checkouts[0], "reset", "-q", "--keep", old)
                else:
                    await git(self.repo, "update-ref", ref, old, new)
            short = ref.removeprefix("refs/heads/")
            undone.append(f"{short} {new[:12]} -> {old[:12] if old else 'deleted'}")
        if undone:
            log.warning(
                "task #%s moved refs outside review; undone: %s", task_id, "; ".join(undone)
            )
        return undone

    def foreign_moves_reason(self, undone: list[str]) -> str:
        """Why a task whose worker moved refs outside review is blocked."""
        return (
            "the worker moved refs outside its task branch (only review merges into "
            f"{self.base_branch}); undone: " + "; ".join(undone)
        )

    async def _holds_task_work(self, new: str, old: str | None, task_id: int, tip: str) -> bool:
        """Whether the commits `new` added over `old` include the task's own work: its
        branch tip, or a commit made with the identity AgentOS's tools commit as."""
        if tip:
            res = await git(self.repo, "merge-base", "--is-ancestor", tip, new, check=False)
            base_has = (
                await git(self.repo, "merge-base", "--is-ancestor", tip, old, check=False)
                if old
                else GitResult(1, "")
            )
            if res.code == 0 and base_has.code != 0:
                return True
        # first parent only: the base branch's own line. A kernel merge of another task
        # during this stage shows there as one "Merge task #N" commit; the commits it
        # brought in sit on its second parent and are not this task's.
        span = f"{old}..{new}" if old else new
        res = await git(
            self.repo, "log", "--first-parent", "--format=%ce %s", span, "-n", "200", check=False
        )
        for line in res.output.splitlines():
            email, _, subject = line.partition(" ")
            if email.endswith("@agentos.local") and not subject.startswith("Merge task #"):
                return True
        return False
