"""Start an executor's CLI: sandboxed, network on, in its own process group, streaming.

`tools.sandbox.run_sandboxed` runs a command to its end and returns its captured
output; an executor needs its output line by line while it runs and a handle to kill
it. So this module builds the same bubblewrap command line with the sandbox's own
pieces (`sandbox_status`, `sandbox_env`, `default_hidden`, `bwrap_argv`) and starts it
itself: the host read-only, AgentOS's state, the database socket and the user's home
hidden, the worktree and the executor's private HOME writable, network allowed (the
CLI must reach its model). bubblewrap runs with --die-with-parent in a new PID
namespace, so a SIGKILL of the agent process takes the whole CLI with it; a stop kills
bubblewrap's process group. Where no sandbox can run and the operator set
AGENTOS_UNSAFE_NO_SANDBOX=1, the CLI runs unsandboxed in its own session with a
parent-death signal (its own children are then only killed with its process group).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from agentos.tools.sandbox import (
    UNSAFE_SETTING,
    SandboxSettings,
    SandboxUnavailable,
    bwrap_argv,
    default_hidden,
    sandbox_env,
    sandbox_status,
)

log = logging.getLogger(__name__)
LINE_LIMIT = 32 * 1024 * 1024  # one JSON event (a big tool result) fits on one line
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


async def start(
    argv: Sequence[str],
    *,
    worktree: Path,
    home: Path,
    env: Mapping[str, str],
    readable: Sequence[Path] = (),
    settings: SandboxSettings | None = None,
) -> tuple[asyncio.subprocess.Process, bool]:
    """Start argv; returns the process (stdout and stderr piped) and whether it is sandboxed."""
    settings = settings or SandboxSettings()
    full_env = sandbox_env({**env, "HOME": str(home)})
    status = sandbox_status(settings)
    if status.available:
        exe = shutil.which(settings.sandbox_bwrap) or settings.sandbox_bwrap
        command = bwrap_argv(
            argv,
            bwrap=exe,
            cwd=worktree,
            writable=[worktree, home],
            readable=list(readable),
            hidden=default_hidden(settings),
            network=True,
            user_namespace=status.user_namespace,
        )
        sandboxed = True
        preexec = None
    elif status.unsafe_opt_in:
        log.warning(
            "running an executor unsandboxed (%s=1): %s",
            UNSAFE_SETTING,
            status.reason,
            extra={"action": "sandbox.unsafe"},
        )
        command, sandboxed, preexec = list(argv), False, _die_with_parent
        full_env.pop("TMPDIR", None)
    else:
        raise SandboxUnavailable(
            f"no sandbox can run here: {status.reason}. Executors are refused; an operator "
            f"may set {UNSAFE_SETTING}=1 to run them unsandboxed (unsafe: they can then read "
            "the agent's credentials and reach the database)"
        )
    proc = await asyncio.create_subprocess_exec(
        *command,
        cwd=worktree,
        env=full_env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        limit=LINE_LIMIT,
        preexec_fn=preexec,
    )
    return proc, sandboxed


def kill(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the process's whole group (the sandbox's PID namespace dies with it)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
