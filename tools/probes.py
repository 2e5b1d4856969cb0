"""Escape probes: what a malicious command tries, run through the real sandbox.

`python -m agentos.tools.sandbox probe` runs them against this install (its
AGENTOS_HOME, its bubblewrap) and prints one line per probe, PASS or FAIL; the exit
code is 0 when every probe passed, 1 when one failed, 2 when no sandbox can run.
The tests run the same probes (tests/tools/test_sandbox.py).

Each probe plants something the sandbox must keep out of reach (a canary in our
environment, a file in AGENTOS_HOME, a Unix socket where the database's would be, a
sibling worktree, a listening TCP port) and runs a command that tries to reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agentos.tools.sandbox import (
    ProcessResult,
    SandboxSettings,
    run_sandboxed,
    sandbox_status,
)

CANARY_NAME = "AGENTOS_PROBE_CANARY_SECRET"


@dataclass(frozen=True)
class ProbeResult:
    """One probe: its name, whether the sandbox held, and what was seen."""

    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        """`PASS  name: detail`."""
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.detail}"


@dataclass
class Stage:
    """What the probes plant: a worktree and its neighbours under an AGENTOS_HOME."""

    home: Path
    worktree: Path
    sibling: Path
    socket_dir: Path
    canary: str
    settings: SandboxSettings


@contextlib.contextmanager
def stage(settings: SandboxSettings | None = None) -> Iterator[Stage]:
    """Plant the probes' targets under AGENTOS_HOME (created if missing), removed after."""
    settings = settings or SandboxSettings()
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix=".probe-", dir=home))
    # `main` re-executes itself with the canary, so it is in this process's initial
    # environment, the one /proc/<pid>/environ shows (os.environ changes are not).
    canary = os.environ.get(CANARY_NAME) or f"canary-{secrets.token_hex(8)}"
    old = os.environ.get(CANARY_NAME)
    os.environ[CANARY_NAME] = canary
    try:
        worktree = base / "worktrees" / "task-1"
        sibling = base / "worktrees" / "task-2"
        socket_dir = base / "pgdata"
        for d in (worktree, sibling, socket_dir):
            d.mkdir(parents=True)
        (sibling / "secret.txt").write_text(canary)
        (socket_dir / "PG_VERSION").write_text(canary)
        yield Stage(home, worktree, sibling, socket_dir, canary, settings)
    finally:
        if old is None:
            os.environ.pop(CANARY_NAME, None)
        else:
            os.environ[CANARY_NAME] = old
        shutil.rmtree(base, ignore_errors=True)


async def _sh(st: Stage, command: str, *, network: bool = False) -> ProcessResult:
    return await run_sandboxed(
        command, worktree=st.worktree, timeout=30, network=network, settings=st.settings
    )


async def probe_parent_environ(st: Stage) -> ProbeResult:
    """The agent's environment is not readable through /proc ($PPID, 1, or any pid)."""
    r = await _sh(st, "cat /proc/$PPID/environ /proc/1/environ; env; cat /proc/*/environ")
    leaked = st.canary in r.output
    return ProbeResult(
        "environment via /proc/$PPID/environ, /proc/1/environ, env",
        not leaked,
        "the canary was printed" if leaked else "no canary in what the command could read",
    )


async def probe_process_tree(st: Stage) -> ProbeResult:
    """The command sees no process of the host (new PID namespace)."""
    r = await _sh(st, "ls /proc | grep -c '^[0-9]'")
    seen = int(r.output.strip().splitlines()[-1] or "0") if r.exit_code == 0 else -1
    # bwrap's reaper, the shell, ls and grep: a handful, never the host's hundreds
    return ProbeResult("process tree", 0 < seen <= 5, f"{seen} processes visible inside")


async def probe_database_socket(st: Stage) -> ProbeResult:
    """A Unix socket under AGENTOS_HOME (where the embedded server's is) cannot be reached."""
    path = st.socket_dir / ".s.PGSQL.5432"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
        server.listen(1)
        code = (
            "import socket,sys\n"
            "s=socket.socket(socket.AF_UNIX)\n"
            f"s.connect({str(path)!r})\n"
            "print('CONNECTED')\n"
        )
        r = await _sh(st, f'ls -la {st.socket_dir}; {sys.executable} -c "{code}" 2>&1')
    finally:
        server.close()
    reached = "CONNECTED" in r.output or st.canary in r.output or "PG_VERSION" in r.output
    return ProbeResult(
        "database socket and data directory",
        not reached,
        "connected to the socket" if reached else "socket directory empty, connect failed",
    )


async def probe_home_hidden(st: Stage) -> ProbeResult:
    """AGENTOS_HOME, the sibling worktree and the user's home are empty inside."""
    r = await _sh(
        st,
        f"cat {st.sibling}/secret.txt; ls -A {st.home}; ls -A {st.sibling}; "
        f"echo x > {st.sibling}/pwned",
    )
    leaked = st.canary in r.output or (st.sibling / "pwned").exists()
    return ProbeResult(
        "sibling worktree and AGENTOS_HOME",
        not leaked,
        "read or wrote the sibling" if leaked else "hidden (nothing to read, no write)",
    )


async def probe_writes_outside(st: Stage) -> ProbeResult:
    """Only the worktree is writable: /tmp and $HOME are private, the rest read-only."""
    marker = f"agentos-probe-{secrets.token_hex(4)}"
    targets = [Path("/tmp") / marker, Path.home() / marker, Path("/var/tmp") / marker]
    cmd = "; ".join(f"touch {t}" for t in targets) + f"; touch $HOME/{marker}; touch ok-{marker}"
    r = await _sh(st, cmd)
    escaped = [str(t) for t in targets if t.exists()]
    for t in targets:
        with contextlib.suppress(OSError):
            t.unlink()
    inside = (st.worktree / f"ok-{marker}").exists()
    return ProbeResult(
        "writes outside the worktree",
        not escaped and inside,
        f"escaped to {', '.join(escaped)}"
        if escaped
        else (
            "worktree writable, nothing else" if inside else f"worktree not writable: {r.output}"
        ),
    )


async def probe_network(st: Stage) -> ProbeResult:
    """A TCP service on 127.0.0.1 of the host is unreachable without network."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    code = (
        "import socket\n"
        f"socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
        "print('CONNECTED')\n"
    )
    try:
        r = await _sh(st, f'{sys.executable} -c "{code}" 2>&1')
    finally:
        server.close()
    reached = "CONNECTED" in r.output
    return ProbeResult(
        "network (127.0.0.1 of the host)",
        not reached,
        "connected" if reached else "no route: the sandbox has its own network namespace",
    )


PROBES: list[Callable[[Stage], Awaitable[ProbeResult]]] = [
    probe_parent_environ,
    probe_process_tree,
    probe_database_socket,
    probe_home_hidden,
    probe_writes_outside,
    probe_network,
]


async def run_probes(settings: SandboxSettings | None = None) -> list[ProbeResult]:
    """Every probe, in order, against this install."""
    out = []
    with stage(settings) as st:
        for probe in PROBES:
            try:
                out.append(await probe(st))
            except Exception as exc:
                out.append(ProbeResult(probe.__name__, False, f"{type(exc).__name__}: {exc}"))
    return out


def main(argv: list[str]) -> int:
    """`python -m agentos.tools.sandbox [probe|status]`."""
    command = argv[0] if argv else "probe"
    if command not in ("probe", "status"):
        print("usage: python -m agentos.tools.sandbox [probe|status]", file=sys.stderr)
        return 64
    if command == "probe" and CANARY_NAME not in os.environ:
        env = {**os.environ, CANARY_NAME: f"canary-{secrets.token_hex(8)}"}
        argv0 = [sys.executable, "-m", "agentos.tools.sandbox", *argv]
        os.execve(sys.executable, argv0, env)
    status = sandbox_status()
    print(status.describe())
    if command == "status":
        return 0 if status.available else 2
    if not status.available:
        print("no probes run: there is no sandbox to probe")
        return 2
    results = asyncio.run(run_probes())
    for result in results:
        print(result.line())
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} of {len(results)} probes passed")
    return 1 if failed else 0
