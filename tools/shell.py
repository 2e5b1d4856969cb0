"""The shell tool: run a command in the worktree, sandboxed, bounded in time and output.

Limits
------
* Sandbox: every command runs through `agentos.tools.sandbox.run_sandboxed`
  (bubblewrap): new PID, IPC, UTS and, unless the role allows network
  (`ToolContext.network`), network namespaces; the worktree is the only writable
  place; AGENTOS_HOME (the database's data directory and socket, other worktrees, the
  workspace), the user's home and /run are hidden; the workspace's `.git` is readable
  (with its config masked: a remote URL may hold a token) so `git status`, `git diff`
  and `git log` work, while commits go through the git tools. Where no sandbox can run
  the tool refuses, saying why, unless the operator set AGENTOS_UNSAFE_NO_SANDBOX=1.
* Time: the role's `shell_timeout`, which the model may only shorten; then the whole
  process group is killed with SIGKILL, so `make` and its children die together, as
  they do when the agent stops (cancellation). A background process lives only as long
  as the command that started it: the sandbox's PID namespace ends with it.
* Output: stdout and stderr are merged; at most `output_cap` characters are kept, the
  head and the tail, with a note of what was cut. Memory stays bounded whatever the
  command prints.
* Environment: an allow-list (PATH, LANG, LC_*, TERM, TZ, PYTHON*...), never a name
  that looks like a secret, HOME in the sandbox's private /tmp, git made
  non-interactive, commits carrying the agent's name, and the runtime's extras
  (`ToolContext.env`) filtered the same way. So AGENTOS_DATABASE_URL, provider keys,
  PG* and cloud credentials never reach a command, neither through its environment nor
  through /proc (the sandbox shows no parent process).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from agentos.tools.base import Tool, ToolContext, ToolError, ToolInput
from agentos.tools.files import resolve_in_worktree
from agentos.tools.sandbox import (
    ProcessResult,
    ProcessStartError,
    SandboxSettings,
    SandboxUnavailable,
    inherited_env,
    is_secret_name,
    run_process,
    run_sandboxed,
)
from pydantic import Field

__all__ = [
    "TOOLS",
    "ProcessResult",
    "agent_env",
    "is_secret_name",
    "run_command",
    "run_process",
    "safe_env",
]  # fmt: skip


def safe_env(
    extra: Mapping[str, str] | None = None, *, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment for a program we run on the host: allow-listed, no secrets, extras."""
    source = os.environ if base is None else base
    env = inherited_env(source)
    for name in ("HOME", "TMPDIR"):  # host programs (git) read the real ones
        if name in source:
            env[name] = source[name]
    env.update(
        {"PAGER": "cat", "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    )
    for k, v in (extra or {}).items():
        if not is_secret_name(k):
            env[k] = v
    return env


def _identity(ctx: ToolContext) -> dict[str, str]:
    return {
        "GIT_AUTHOR_NAME": ctx.agent,
        "GIT_AUTHOR_EMAIL": f"{ctx.agent}@agentos.local",
        "GIT_COMMITTER_NAME": ctx.agent,
        "GIT_COMMITTER_EMAIL": f"{ctx.agent}@agentos.local",
    }


def agent_env(ctx: ToolContext) -> dict[str, str]:
    """safe_env for this context, with git identity set to the agent."""
    return safe_env({**_identity(ctx), **(ctx.env or {})})


def command_extras(ctx: ToolContext) -> dict[str, str]:
    """What a sandboxed command gets beyond the allow-list: git identity, non-secret extras."""
    extras = {k: v for k, v in (ctx.env or {}).items() if not is_secret_name(k)}
    return {**_identity(ctx), **extras}


def workspace_git(settings: SandboxSettings) -> Path:
    """The shared repository's .git directory (read-only in the sandbox)."""
    return (settings.workspace or settings.home / "workspace") / ".git"


class RunCommandInput(ToolInput):
    command: str = Field(min_length=1, description="A /bin/sh command line.")
    timeout: float | None = Field(
        default=None,
        gt=0,
        description="Seconds before the command is killed; default and maximum: the role's "
        "shell timeout.",
    )
    cwd: str = Field(default=".", description="Directory to run in, relative to the worktree.")


async def run_in_worktree(
    command: str | Sequence[str],
    *,
    worktree: Path,
    timeout: float,
    cwd: Path | None = None,
    output_cap: int = 16_000,
    network: bool = False,
    hidden: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
) -> ProcessResult:
    """Run a command a model caused (a tool call, the reviewer's check of the code the
    workers wrote) in the sandbox of a task's worktree.

    The shared repository's .git is readable (so `git status`, `git diff` work) with its
    config shown empty (a remote URL may carry a token). SandboxUnavailable when no
    sandbox can run and the operator did not opt out.
    """
    settings = SandboxSettings()
    git_dir = workspace_git(settings)
    return await run_sandboxed(
        command,
        worktree=worktree,
        cwd=cwd,
        timeout=timeout,
        output_cap=output_cap,
        network=network,
        readable=[git_dir] if git_dir.is_dir() else [],
        masked=[git_dir / "config"] if (git_dir / "config").is_file() else [],
        hidden=list(hidden),
        env=env,
        settings=settings,
    )


async def run_command(ctx: ToolContext, args: RunCommandInput) -> str:
    """Run a shell command in the sandboxed worktree and report its exit code and output."""
    cwd = resolve_in_worktree(ctx, args.cwd)
    if not cwd.is_dir():
        raise ToolError(f"{args.cwd}: not a directory")
    timeout = ctx.shell_timeout if args.timeout is None else min(args.timeout, ctx.shell_timeout)
    try:
        result = await run_in_worktree(
            args.command,
            worktree=ctx.worktree,
            cwd=cwd,
            timeout=timeout,
            output_cap=max(ctx.output_cap - 400, 1000),  # room for the status line and notes
            network=ctx.network,
            hidden=ctx.hidden_paths,
            env=command_extras(ctx),
        )
    except SandboxUnavailable as exc:
        raise ToolError(f"run_command is disabled: {exc}") from exc
    except ProcessStartError as exc:
        raise ToolError(str(exc)) from exc
    text = result.output if result.output.strip() else "(no output)"
    note = ""
    if result.lingering_killed:
        note = (
            "\n[background processes still held the output and were killed; redirect the "
            "output of a process that must keep running: cmd > file.log 2>&1 &]"
        )
    if result.timed_out:
        raise ToolError(f"{result.status()}\n{text}{note}")
    return f"{result.status()}\n{text}{note}"


TOOLS = [
    Tool(
        "run_command",
        "Run a shell command (/bin/sh -c) in the worktree; returns the exit code and the "
        "combined stdout/stderr (long output keeps its head and tail). It runs in a sandbox: "
        "only the worktree is writable, background processes end with the command, there "
        "is no network unless the role allows it, no secrets and no terminal (do not start "
        "interactive programs); commit with the git tools.",
        RunCommandInput,
        run_command,
        timeout=None,
    )
]
