"""The shell tool: run a command in the worktree, bounded in time and output, without secrets.

Limits
------
* Time: the command runs in its own process group (a new session); when the timeout
  (the role's `shell_timeout`, which the model may only shorten) passes, the whole group
  is killed with SIGKILL, so `make` and its children die together. When the command
  exits but background processes still hold its output open, they are killed after a
  one-second grace: a server meant to outlive the command must redirect its output
  (`cmd > server.log 2>&1 &`).
* Output: stdout and stderr are merged; at most `output_cap` characters are kept, the
  head and the tail, with a note of what was cut. Memory stays bounded whatever the
  command prints.
* Environment: built from an allowlist, never inherited whole. From the process
  environment only PATH, HOME, LANG, LANGUAGE, LC_*, TERM, TMPDIR, TZ, USER, LOGNAME,
  SHELL, VIRTUAL_ENV and PYTHON* pass, and then only if the name contains none of KEY,
  TOKEN, SECRET, PASSWORD, PASSWD, CREDENTIAL, DATABASE_URL (case-insensitive); the same
  filter applies to the extra variables the runtime gives (`ToolContext.env`). So
  AGENTOS_DATABASE_URL, AGENTOS_LLM_API_KEY, OPENAI_API_KEY, PG* and cloud credentials
  never reach a command. Git runs non-interactively (GIT_TERMINAL_PROMPT=0, PAGER=cat)
  and commits made from the shell carry the agent's name.

This is hygiene, not a sandbox: a command can read any file the process's user can.
Isolation is the container and its non-root user (see the Dockerfile and Helm chart).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agentos.tools.base import Tool, ToolContext, ToolError, ToolInput
from agentos.tools.files import resolve_in_worktree
from pydantic import Field

ALLOWED_NAMES = frozenset(
    {"PATH", "HOME", "LANG", "LANGUAGE", "TERM", "TMPDIR", "TZ", "USER", "LOGNAME", "SHELL",
     "VIRTUAL_ENV"}
)  # fmt: skip
ALLOWED_PREFIXES = ("LC_", "PYTHON")
DENIED_PARTS = (
    "KEY",
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "DATABASE_URL",
    "AGENTOS_DATABASE_URL",
    "AGENTOS_LLM_API_KEY",
)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LINGER_GRACE = 1.0
READ_CHUNK = 65_536


def is_secret_name(name: str) -> bool:
    """True when an environment variable's name suggests a secret."""
    upper = name.upper()
    return any(part in upper for part in DENIED_PARTS)


def safe_env(
    extra: Mapping[str, str] | None = None, *, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment for a command: the allowlisted, non-secret part of `base` plus `extra`."""
    source = os.environ if base is None else base
    env = {
        k: v
        for k, v in source.items()
        if (k in ALLOWED_NAMES or k.startswith(ALLOWED_PREFIXES)) and not is_secret_name(k)
    }
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(
        {"PAGER": "cat", "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    )
    for k, v in (extra or {}).items():
        if not is_secret_name(k):
            env[k] = v
    return env


def agent_env(ctx: ToolContext) -> dict[str, str]:
    """safe_env for this context, with git identity set to the agent."""
    ident = {
        "GIT_AUTHOR_NAME": ctx.agent,
        "GIT_AUTHOR_EMAIL": f"{ctx.agent}@agentos.local",
        "GIT_COMMITTER_NAME": ctx.agent,
        "GIT_COMMITTER_EMAIL": f"{ctx.agent}@agentos.local",
    }
    return safe_env({**ident, **(ctx.env or {})})


@dataclass(frozen=True)
class ProcessResult:
    """How a process ended and what it printed (capped)."""

    exit_code: int | None
    output: str
    timed_out: bool
    lingering_killed: bool
    dropped_bytes: int
    seconds: float

    def status(self) -> str:
        """One line: exit code, signal or timeout, and the duration."""
        if self.timed_out:
            return f"timed out after {self.seconds:.1f} s; the command's process group was killed"
        if self.exit_code is not None and self.exit_code < 0:
            return f"killed by signal {-self.exit_code} after {self.seconds:.1f} s"
        return f"exit code {self.exit_code} ({self.seconds:.1f} s)"


class _Capture:
    """Keeps the first `head` and the last `tail` bytes of a stream, counting the rest."""

    def __init__(self, cap: int) -> None:
        self.head_limit = max(cap * 2 // 3, 1)
        self.tail_limit = max(cap - self.head_limit, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.tail_limit:
                del self.tail[: len(self.tail) - self.tail_limit]

    def text(self) -> tuple[str, int]:
        dropped = self.total - len(self.head) - len(self.tail)
        head = self.head.decode("utf-8", errors="replace")
        if not dropped:
            return head + self.tail.decode("utf-8", errors="replace"), 0
        tail = self.tail.decode("utf-8", errors="replace")
        return f"{head}\n[... {dropped} bytes of output cut ...]\n{tail}", dropped


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def _exited(proc: asyncio.subprocess.Process, reader: asyncio.Task[None]) -> None:
    """Wait for the process itself to exit.

    Process.wait() (Python 3.11) also waits for the pipes to close, which a background
    child can hold open forever; so until the output ends, poll the return code.
    """
    while proc.returncode is None:
        if reader.done():
            await proc.wait()
            return
        await asyncio.wait({reader}, timeout=0.05)


async def run_process(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    cap: int,
    stdin_data: bytes | None = None,
) -> ProcessResult:
    """Run argv in its own process group; kill the group on timeout or cancellation."""
    start = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.PIPE if stdin_data is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise ToolError(f"cannot start {argv[0]}: {exc.strerror or exc}") from exc
    capture = _Capture(cap)
    assert proc.stdout is not None

    async def pump() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(READ_CHUNK):
            capture.add(chunk)

    reader = asyncio.create_task(pump())
    timed_out = lingering = False
    try:
        if stdin_data is not None and proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(stdin_data)
                await proc.stdin.drain()
            proc.stdin.close()
        try:
            await asyncio.wait_for(_exited(proc, reader), timeout)
        except TimeoutError:
            timed_out = True
            _kill_group(proc.pid)
            await _exited(proc, reader)
        # The command is over; its background children may still hold the pipe open.
        done, _ = await asyncio.wait({reader}, timeout=LINGER_GRACE)
        if not done:
            lingering = True
            _kill_group(proc.pid)
            done, _ = await asyncio.wait({reader}, timeout=2.0)
            if not done:
                reader.cancel()
    finally:
        if proc.returncode is None:
            _kill_group(proc.pid)
        if not reader.done():
            reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    output, dropped = capture.text()
    return ProcessResult(
        exit_code=proc.returncode,
        output=output,
        timed_out=timed_out,
        lingering_killed=lingering,
        dropped_bytes=dropped,
        seconds=time.monotonic() - start,
    )


class RunCommandInput(ToolInput):
    command: str = Field(min_length=1, description="A /bin/sh command line.")
    timeout: float | None = Field(
        default=None,
        gt=0,
        description="Seconds before the command is killed; default and maximum: the role's "
        "shell timeout.",
    )
    cwd: str = Field(default=".", description="Directory to run in, relative to the worktree.")


async def run_command(ctx: ToolContext, args: RunCommandInput) -> str:
    """Run a shell command in the worktree and report its exit code and output."""
    cwd = resolve_in_worktree(ctx, args.cwd)
    if not cwd.is_dir():
        raise ToolError(f"{args.cwd}: not a directory")
    timeout = ctx.shell_timeout if args.timeout is None else min(args.timeout, ctx.shell_timeout)
    result = await run_process(
        ["/bin/sh", "-c", args.command],
        cwd=cwd,
        env=agent_env(ctx),
        timeout=timeout,
        cap=max(ctx.output_cap - 400, 1000),  # room for the status line and notes
    )
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
        "combined stdout/stderr (long output keeps its head and tail). No secrets are in its "
        "environment and there is no terminal: do not start interactive programs.",
        RunCommandInput,
        run_command,
        timeout=None,
    )
]
