"""Git tools for the task's worktree: status, diff, log, commit.

Merging is not a tool: the reviewer approves through the runtime, which merges the
task branch into the base branch. `git_commit` stages everything (`git add -A`, except
`.agentos/`, where tools keep screenshots) and commits as the agent
(`<agent> <agent@agentos.local>`). It refuses to commit on the base branch
(`ctx.extra["base_branch"]`, default `main`): work reaches it only through review.
Git runs with the shell tool's environment (no secrets, no prompts, no pager), hooks
disabled (`GIT_SAFE_CONFIG`), and only in a repository whose own configuration cannot
make git run a program (`DANGEROUS_CONFIG`): the model can write every file of its
worktree, including the `.git` pointer file, so each call first checks that the
worktree's `.git` is a plain file naming a git directory and that the repository's
local config holds nothing that executes (filters, textconv, sshCommand, ...).
AgentOS's own git (agents/workspace.py) uses the same two definitions.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from agentos.tools.base import Tool, ToolContext, ToolError, ToolInput
from agentos.tools.files import rel, resolve_in_worktree, worktree_root
from agentos.tools.sandbox import ProcessResult, ProcessStartError, run_process
from agentos.tools.shell import agent_env
from pydantic import Field

GIT_TIMEOUT = 60.0
MAX_LOG = 200
NOT_OURS = ":(exclude).agentos"
# Every git command AgentOS runs: no hooks, no fsmonitor daemon, no external transports,
# no pager. `-c` outranks every config file, so a repository cannot turn these back on.
GIT_SAFE_CONFIG = (
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "protocol.ext.allow=never",
    "-c",
    "core.pager=cat",
    "-c",
    "color.ui=false",
)
# Repository-local configuration that makes git run a program of the repository's
# choosing and that GIT_SAFE_CONFIG cannot override. A repository we work on may have
# been written by a model. (core.hooksPath and core.fsmonitor are overridden above, so
# a checkout that uses husky, say, still works.)
DANGEROUS_CONFIG = re.compile(
    r"^(core\.(sshcommand|gitproxy|askpass|alternaterefscommand)"
    r"|sequence\.editor|diff\.external|diff\..+\.(textconv|command)"
    r"|filter\..+\.(clean|smudge|process)|merge\..+\.driver"
    r"|credential(\..+)?\.helper|gpg(\..+)?\.program|uploadpack\.packobjectshook"
    r"|remote\..+\.(uploadpack|receivepack)|include\.path|includeif\..+\.path"
    r"|url\..+\.insteadof|url\..+\.pushinsteadof)$"
)


def dangerous_keys(config_names: str) -> list[str]:
    """The keys of `git config --list --name-only` output that would run a program."""
    return sorted({k for k in config_names.split() if DANGEROUS_CONFIG.match(k.lower())})


def base_branch(ctx: ToolContext) -> str:
    """The branch the task's work is merged into."""
    return str(ctx.extra.get("base_branch", "main"))


async def _run_git(
    ctx: ToolContext, root: Path, *args: str, stdin: str | None = None
) -> ProcessResult:
    # never climb into an enclosing repository when the worktree is not one itself
    env = {**agent_env(ctx), "GIT_CEILING_DIRECTORIES": str(root.parent)}
    try:
        return await run_process(
            ["git", *GIT_SAFE_CONFIG, *args],
            cwd=root,
            env=env,
            timeout=GIT_TIMEOUT,
            cap=ctx.output_cap,
            stdin_data=None if stdin is None else stdin.encode("utf-8"),
        )
    except ProcessStartError as exc:
        raise ToolError(str(exc)) from exc


async def _refuse_unsafe_repository(ctx: ToolContext, root: Path) -> None:
    """ToolError unless the worktree is a git worktree whose config runs nothing."""
    dotgit = root / ".git"
    try:
        st = os.lstat(dotgit)
    except FileNotFoundError:
        raise ToolError("the worktree is not a git repository (no .git)") from None
    if stat.S_ISLNK(st.st_mode):
        raise ToolError("the worktree's .git is a symbolic link; refusing to run git")
    res = await _run_git(ctx, root, "config", "--local", "--list", "--name-only")
    bad = dangerous_keys(res.output) if res.exit_code == 0 else []
    if stat.S_ISREG(st.st_mode):  # a linked worktree may have config of its own
        wt = await _run_git(ctx, root, "config", "--worktree", "--list", "--name-only")
        if wt.exit_code == 0:
            bad += dangerous_keys(wt.output)
    if bad:
        raise ToolError(
            f"refusing to run git: the repository's config runs programs ({', '.join(bad)})"
        )


async def git(
    ctx: ToolContext, *args: str, check: bool = True, stdin: str | None = None
) -> ProcessResult:
    """Run git in the worktree; ToolError when it fails and `check` is set."""
    root = worktree_root(ctx)
    await _refuse_unsafe_repository(ctx, root)
    result = await _run_git(ctx, root, *args, stdin=stdin)
    sub = next((a for a in args if not a.startswith("-") and "=" not in a), "")
    if result.timed_out:
        raise ToolError(f"git {sub} {result.status()}")
    if check and result.exit_code != 0:
        raise ToolError(f"git {sub} failed ({result.status()}): {result.output.strip()}")
    return result


async def current_branch(ctx: ToolContext) -> str | None:
    """The checked-out branch, or None on a detached HEAD."""
    r = await git(ctx, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    return r.output.strip() if r.exit_code == 0 else None


def _pathspec(ctx: ToolContext, path: str | None) -> list[str]:
    if path is None:
        return []
    return ["--", rel(ctx, resolve_in_worktree(ctx, path))]


class GitStatusInput(ToolInput):
    pass


async def git_status(ctx: ToolContext, args: GitStatusInput) -> str:
    """Branch and changed files (short format)."""
    r = await git(ctx, "status", "--short", "--branch", "--untracked-files=all")
    lines = r.output.strip().splitlines()
    if len(lines) <= 1:
        return (lines[0] if lines else "") + "\nclean: nothing to commit"
    return r.output.strip()


class GitDiffInput(ToolInput):
    against_base: bool = Field(
        default=False,
        description="false: uncommitted changes (staged and unstaged) against the last "
        "commit. true: everything this branch committed since it left the base branch, "
        "as a reviewer sees it.",
    )
    path: str | None = Field(default=None, description="Only this file or directory.")
    stat: bool = Field(default=False, description="Only the summary of changed files.")


async def git_diff(ctx: ToolContext, args: GitDiffInput) -> str:
    """The diff of the worktree or of the branch against its base (capped)."""
    spec = _pathspec(ctx, args.path)
    mode = ["--stat"] if args.stat else []
    if args.against_base:
        base = base_branch(ctx)
        r = await git(ctx, "diff", *mode, f"{base}...HEAD", *spec, check=False)
        if r.exit_code != 0:
            raise ToolError(f"cannot diff against {base!r}: {r.output.strip()}")
        what = f"committed changes since {base}"
    else:
        r = await git(ctx, "diff", *mode, "HEAD", *spec, check=False)
        if r.exit_code != 0:  # no commit yet: everything staged is new
            r = await git(ctx, "diff", *mode, "--cached", *spec)
        what = "uncommitted changes"
    untracked = ""
    if not args.against_base:
        u = await git(ctx, "ls-files", "--others", "--exclude-standard", *spec)
        if u.output.strip():
            untracked = "untracked files (not in the diff until committed):\n" + u.output
    if not r.output.strip():
        return f"no {what}" + (f"\n{untracked}" if untracked else "")
    return r.output + (f"\n{untracked}" if untracked else "")


class GitLogInput(ToolInput):
    max_count: int = Field(default=20, ge=1, le=MAX_LOG, description="How many commits.")
    since_base: bool = Field(
        default=False, description="Only the commits of this branch not in the base branch."
    )
    path: str | None = Field(default=None, description="Only commits touching this path.")


async def git_log(ctx: ToolContext, args: GitLogInput) -> str:
    """Recent commits, newest first: hash, date, author, subject."""
    rng = [f"{base_branch(ctx)}..HEAD"] if args.since_base else []
    r = await git(
        ctx,
        "log",
        f"--max-count={args.max_count}",
        "--format=%h %ad %an: %s",
        "--date=short",
        *rng,
        *_pathspec(ctx, args.path),
        check=False,
    )
    if r.exit_code != 0:
        if "does not have any commits" in r.output:
            return "no commits yet"
        raise ToolError(f"git log failed: {r.output.strip()}")
    return r.output.strip() or "no commits"


class GitCommitInput(ToolInput):
    message: str = Field(
        min_length=1, max_length=10_000, description="The commit message (subject line first)."
    )


async def git_commit(ctx: ToolContext, args: GitCommitInput) -> str:
    """Stage every change and commit it as the agent."""
    message = args.message.strip()
    if not message:
        raise ToolError("the commit message is empty")
    branch = await current_branch(ctx)
    if branch is not None and branch == base_branch(ctx):
        raise ToolError(
            f"refusing to commit on the base branch {branch!r}: work reaches it through review"
        )
    await git(ctx, "add", "-A", "--", ".", NOT_OURS)
    staged = await git(ctx, "diff", "--cached", "--quiet", check=False)
    if staged.exit_code == 0:
        return "nothing to commit (working tree clean)"
    await git(
        ctx,
        "-c",
        f"user.name={ctx.agent}",
        "-c",
        f"user.email={ctx.agent}@agentos.local",
        "commit",
        "--quiet",
        "--file=-",
        stdin=message + "\n",
    )
    head = await git(ctx, "log", "-1", "--format=%h %s", "--stat=100")
    where = f" on {branch}" if branch else " (detached HEAD)"
    return f"committed{where}: {head.output.strip()}"


TOOLS = [
    Tool(
        "git_status",
        "Show the branch and the changed, staged and untracked files of the worktree.",
        GitStatusInput,
        git_status,
        read_only=True,
    ),
    Tool(
        "git_diff",
        "Show a diff: your uncommitted changes, or (against_base) everything the branch "
        "changed since the base branch.",
        GitDiffInput,
        git_diff,
        read_only=True,
    ),
    Tool(
        "git_log",
        "Show recent commits (hash, date, author, subject).",
        GitLogInput,
        git_log,
        read_only=True,
    ),
    Tool(
        "git_commit",
        "Stage all changes (git add -A) and commit them with the given message, as you. "
        "Commit on your task branch; merging is done by the reviewer.",
        GitCommitInput,
        git_commit,
    ),
]
