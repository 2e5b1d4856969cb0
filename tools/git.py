"""Git tools for the task's worktree: status, diff, log, commit.

Merging is not a tool: the reviewer approves through the runtime, which merges the
task branch into the base branch. `git_commit` stages everything (`git add -A`, except
`.agentos/`, where tools keep screenshots) and commits as the agent
(`<agent> <agent@agentos.local>`). It refuses to commit on the base branch
(`ctx.extra["base_branch"]`, default `main`): work reaches it only through review.
Git runs with the shell tool's environment (no secrets, no prompts, no pager).
"""

from __future__ import annotations

from agentos.tools.base import Tool, ToolContext, ToolError, ToolInput
from agentos.tools.files import rel, resolve_in_worktree, worktree_root
from agentos.tools.sandbox import ProcessResult, ProcessStartError, run_process
from agentos.tools.shell import agent_env
from pydantic import Field

GIT_TIMEOUT = 60.0
MAX_LOG = 200
NOT_OURS = ":(exclude).agentos"


def base_branch(ctx: ToolContext) -> str:
    """The branch the task's work is merged into."""
    return str(ctx.extra.get("base_branch", "main"))


async def git(
    ctx: ToolContext, *args: str, check: bool = True, stdin: str | None = None
) -> ProcessResult:
    """Run git in the worktree; ToolError when it fails and `check` is set."""
    root = worktree_root(ctx)
    # never climb into an enclosing repository when the worktree is not one itself
    env = {**agent_env(ctx), "GIT_CEILING_DIRECTORIES": str(root.parent)}
    try:
        result = await run_process(
            ["git", "-c", "core.pager=cat", "-c", "color.ui=false", *args],
            cwd=root,
            env=env,
            timeout=GIT_TIMEOUT,
            cap=ctx.output_cap,
            stdin_data=None if stdin is None else stdin.encode("utf-8"),
        )
    except ProcessStartError as exc:
        raise ToolError(str(exc)) from exc
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
