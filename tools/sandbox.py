"""The one runner for every command a model causes: a bubblewrap sandbox on Linux.

Every command that a model chooses or writes (the shell tool, the reviewer's check, an
external executor run in our process tree) goes through `run_sandboxed`. Programs we
choose and run ourselves on trusted input (git inside the git tools) use `run_process`,
the same process machinery without the sandbox.

Layout of the sandbox (bubblewrap, `bwrap`)
-------------------------------------------
Namespaces: new PID, IPC, UTS, cgroup and (where the kernel allows) user namespaces,
and a new network namespace unless the caller allows network. In the new PID
namespace the command sees only itself and its children: `/proc/1` is bubblewrap's
reaper, started with the same allow-listed environment as the command, so
`cat /proc/$PPID/environ` and `/proc/1/environ` reveal nothing the command does not
already have. `--new-session` stops a command from pushing keystrokes into our
terminal (TIOCSTI); `--die-with-parent`, `--cap-drop ALL` and bubblewrap's
no_new_privs mean that a sandboxed process holds no capability, cannot gain one
through a setuid binary, and dies with its runner.

Filesystem, in mount order (later mounts sit on top of earlier ones):

=========================  ==========================================================
``/``                      the host's root, read-only (recursively)
``/dev``, ``/proc``        a minimal /dev; the new PID namespace's /proc
``/tmp``, ``/var/tmp``     private tmpfs (size-capped); HOME is ``/tmp/home``
``/run``                   empty tmpfs: system sockets (PostgreSQL's /run/postgresql,
                           the Docker socket, D-Bus, ssh-agent) are unreachable
hidden paths               empty tmpfs (or /dev/null for a file): AGENTOS_HOME (pgdata
                           and its socket, run/, every worktree, the workspace),
                           AGENTOS_WORKSPACE, the user's real home (~/.ssh, ~/.aws,
                           ~/.pgpass) and whatever the caller adds
readable paths             bound back read-only on top (the Python environment when it
                           lives under a hidden path, the caller's extras)
writable paths             bound read-write on top: the worktree, the caller's extras
=========================  ==========================================================

The environment is built from an allow-list (`sandbox_env`): PATH, LANG, LANGUAGE,
LC_*, TERM, TZ, USER, LOGNAME, SHELL, VIRTUAL_ENV and PYTHON* from our own environment
(never a name that looks like a secret), HOME=/tmp/home, TMPDIR=/tmp, plus the explicit
extras the caller passes, which are taken verbatim (an executor passes its provider
key that way, knowingly). bubblewrap is started with exactly that environment and
hands it on; it is never on a command line (`--setenv` would show every value to `ps`).

When a command's main process exits, the PID namespace ends and every process left in
it is killed: a background server lives only as long as the command that started it.
On a timeout or when the awaiting task is cancelled (the agent stops, the task is
cancelled, the lease is lost), the runner kills bubblewrap's whole process group; the
kernel then kills everything in the namespace.

Where no sandbox can run
------------------------
`sandbox_status()` probes once per process (cached): not Linux, no `bwrap` on PATH, or
bubblewrap unable to create its namespaces (user namespaces disabled, a container
whose seccomp profile forbids them). Then `run_sandboxed` raises `SandboxUnavailable`,
whose message says why, unless the operator set AGENTOS_UNSAFE_NO_SANDBOX=1: then the
command runs unsandboxed with the same environment policy, and can read whatever the
agent's user can (credentials of the process, the database's socket).

`python -m agentos.tools.sandbox probe` runs the escape probes against this install
and prints PASS/FAIL for each (docs/security.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agentos.kernel.settings import Settings
from agentos.tools.base import ToolError
from pydantic import Field

log = logging.getLogger(__name__)

ALLOWED_NAMES = frozenset(
    {"PATH", "LANG", "LANGUAGE", "TERM", "TZ", "USER", "LOGNAME", "SHELL", "VIRTUAL_ENV"}
)
ALLOWED_PREFIXES = ("LC_", "PYTHON")
DENIED_PARTS = (
    "KEY",
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "DATABASE_URL",
)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SANDBOX_HOME = "/tmp/home"
SANDBOX_HOSTNAME = "agentos-sandbox"
TMPFS_BYTES = 1 << 30  # a command cannot fill the machine's memory through /tmp
# Directories of system daemons' sockets; hidden even when the caller hides nothing.
SYSTEM_HIDDEN = ("/run", "/var/run", "/var/lib/postgresql", "/var/lib/docker")
LINGER_GRACE = 1.0
READ_CHUNK = 65_536
PROBE_TIMEOUT = 15.0
UNSAFE_SETTING = "AGENTOS_UNSAFE_NO_SANDBOX"


class SandboxSettings(Settings):
    """The kernel's settings plus what the sandbox reads (AGENTOS_*)."""

    workspace: Path | None = Field(
        default=None, description="The shared git repository (hidden from commands)."
    )
    unsafe_no_sandbox: bool = Field(
        default=False,
        description="Run model commands WITHOUT a sandbox where none can run. Unsafe: a "
        "command can then read the agent's credentials and reach the database.",
    )
    sandbox_bwrap: str = Field(default="bwrap", description="The bubblewrap executable.")


class SandboxUnavailable(ToolError):
    """No sandbox can run here and the operator did not opt out of it."""


# -------------------------------------------------------------- processes ----


@dataclass(frozen=True)
class ProcessResult:
    """How a process ended and what it printed (capped)."""

    exit_code: int | None
    output: str
    timed_out: bool
    lingering_killed: bool
    dropped_bytes: int
    seconds: float
    sandboxed: bool = False

    def status(self) -> str:
        """One line: exit code, signal or timeout, and the duration."""
        if self.timed_out:
            return f"timed out after {self.seconds:.1f} s; the command's process group was killed"
        if self.exit_code is not None and self.exit_code < 0:
            return f"killed by signal {-self.exit_code} after {self.seconds:.1f} s"
        return f"exit code {self.exit_code} ({self.seconds:.1f} s)"


class ProcessStartError(ToolError):
    """The program could not be started at all (missing, not executable)."""


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
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    cap: int,
    stdin_data: bytes | None = None,
) -> ProcessResult:
    """Run argv unsandboxed in its own process group; kill the group on timeout or cancel.

    For programs we choose (git in the git tools). A command a model chose goes through
    `run_sandboxed`. ProcessStartError when the program cannot start.
    """
    start = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.PIPE if stdin_data is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise ProcessStartError(f"cannot start {argv[0]}: {exc.strerror or exc}") from exc
    capture = _Capture(cap)

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
        # Also on cancellation: the agent stopped, so the command must not outlive it.
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


# ------------------------------------------------------------ environment ----


def is_secret_name(name: str) -> bool:
    """True when an environment variable's name suggests a secret."""
    upper = name.upper()
    return any(part in upper for part in DENIED_PARTS)


def inherited_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allow-listed, non-secret part of `base` (default: our environment)."""
    source = os.environ if base is None else base
    env = {
        k: v
        for k, v in source.items()
        if (k in ALLOWED_NAMES or k.startswith(ALLOWED_PREFIXES)) and not is_secret_name(k)
    }
    env.setdefault("PATH", DEFAULT_PATH)
    return env


def sandbox_env(
    extra: Mapping[str, str] | None = None, *, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The whole environment of a sandboxed command: the allow-list, a private HOME, extras."""
    env = inherited_env(base)
    env.update(
        {
            "HOME": SANDBOX_HOME,
            "TMPDIR": "/tmp",
            "PAGER": "cat",
            "GIT_PAGER": "cat",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "true",
        }
    )
    env.update(extra or {})
    return env


# ----------------------------------------------------------------- status ----


@dataclass(frozen=True)
class SandboxStatus:
    """Whether commands run sandboxed here, with what, and if not, why."""

    available: bool
    mechanism: str
    reason: str
    unsafe_opt_in: bool
    user_namespace: bool = False

    @property
    def runs_commands(self) -> bool:
        """True when the shell tool may run commands (sandboxed or by the operator's opt-in)."""
        return self.available or self.unsafe_opt_in

    def describe(self) -> str:
        """One line for `agentos tool list`, start and doctor."""
        if self.available:
            userns = ", user namespace" if self.user_namespace else ""
            return f"sandbox: {self.mechanism} (pid, ipc, uts, net{userns}; worktree only)"
        if self.unsafe_opt_in:
            return (
                f"sandbox: NONE — {self.reason}; commands run UNSANDBOXED because "
                f"{UNSAFE_SETTING}=1 (they can read credentials and reach the database)"
            )
        return (
            f"sandbox: unavailable — {self.reason}; the shell tool refuses to run commands "
            f"(set {UNSAFE_SETTING}=1 to run them unsandboxed, unsafely)"
        )


def sandbox_status(settings: SandboxSettings | None = None) -> SandboxStatus:
    """This machine's sandbox status (probed once per bwrap executable and cached)."""
    settings = settings or SandboxSettings()
    available, mechanism, reason, userns = _probe(settings.sandbox_bwrap)
    return SandboxStatus(available, mechanism, reason, settings.unsafe_no_sandbox, userns)


def describe(settings: SandboxSettings | None = None) -> str:
    """The sandbox status in one line."""
    return sandbox_status(settings).describe()


@functools.lru_cache(maxsize=8)
def _probe(bwrap: str) -> tuple[bool, str, str, bool]:
    if platform.system() != "Linux":
        return False, "none", f"{platform.system()} has no bubblewrap (Linux only)", False
    exe = shutil.which(bwrap)
    if exe is None:
        return False, "none", f"{bwrap} not found (install Debian's bubblewrap package)", False
    version = _run_quiet([exe, "--version"]).stdout.strip() or "bubblewrap"
    base = [exe, "--die-with-parent", "--new-session", "--ro-bind", "/", "/",
            "--proc", "/proc", "--dev", "/dev"]  # fmt: skip
    # A user namespace adds --disable-userns (no nested namespaces inside); root can
    # sandbox without one, an unprivileged user cannot.
    with_userns = _run_quiet([*base[:1], "--unshare-all", "--unshare-user", "--disable-userns",
                              *base[1:], "true"])  # fmt: skip
    if with_userns.returncode == 0:
        return True, version, "", True
    plain = _run_quiet([*base[:1], "--unshare-all", *base[1:], "true"])
    if plain.returncode == 0:
        return True, version, "", False
    detail = (plain.stderr or with_userns.stderr).strip().splitlines()
    why = detail[-1] if detail else f"exit code {plain.returncode}"
    return (
        False,
        "none",
        f"bubblewrap cannot create namespaces here ({why}); user namespaces may be "
        "disabled (sysctl kernel.unprivileged_userns_clone, user.max_user_namespaces) or "
        "forbidden by the container's seccomp profile",
        False,
    )


def _run_quiet(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            env={"PATH": DEFAULT_PATH},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(argv, 1, "", str(exc))


# ----------------------------------------------------------------- layout ----


def default_hidden(settings: SandboxSettings) -> list[Path]:
    """What every sandbox hides: AGENTOS_HOME, the workspace, the user's home, system sockets."""
    paths = [settings.home, settings.pgdata]
    if settings.workspace is not None:
        paths.append(settings.workspace)
    paths.append(Path.home())
    paths.extend(Path(p) for p in SYSTEM_HIDDEN)
    return paths


def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(path))


def _under(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def bwrap_argv(
    argv: Sequence[str],
    *,
    bwrap: str,
    cwd: Path,
    writable: Iterable[Path],
    readable: Iterable[Path] = (),
    hidden: Iterable[Path] = (),
    masked: Iterable[Path] = (),
    network: bool = False,
    user_namespace: bool = True,
) -> list[str]:
    """The bubblewrap command line that runs argv with this layout (see the module doc).

    It carries no environment: start bubblewrap with exactly the command's environment
    (sandbox_env), which it hands on. A `--setenv NAME VALUE` would put every value, a
    provider key among them, in bubblewrap's argv, which any process can read."""
    out = [bwrap, "--die-with-parent", "--new-session", "--cap-drop", "ALL",
           "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
           "--hostname", SANDBOX_HOSTNAME]  # fmt: skip
    if user_namespace:
        out += ["--unshare-user", "--disable-userns"]
    if not network:
        out.append("--unshare-net")
    out += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for tmp in ("/tmp", "/var/tmp"):
        if os.path.isdir(tmp) and not os.path.islink(tmp):
            out += ["--size", str(TMPFS_BYTES), "--tmpfs", tmp]
    out += ["--dir", SANDBOX_HOME]
    # Shallow paths first, so a hidden directory never covers a deeper bind made earlier.
    real_hidden = sorted(
        {_real(p) for p in hidden if os.path.lexists(p)}, key=lambda p: len(p.parts)
    )
    for path in real_hidden:
        if path == Path("/"):
            continue
        if path.is_dir():
            out += ["--tmpfs", str(path)]
        else:
            out += ["--ro-bind", "/dev/null", str(path)]
    # The running Python (and a virtualenv of it) stays usable under a hidden path or the
    # private /tmp: the reviewer's check and executors run `{python}` and scripts of it.
    readable = [*_python_dirs(hidden), *readable]
    resolv = _real("/etc/resolv.conf")
    if network and resolv.is_file() and any(_under(resolv, h) for h in real_hidden):
        # /etc/resolv.conf is often a link into /run (systemd-resolved): keep DNS working
        readable = [*readable, resolv]
    for path in sorted(
        {_real(p) for p in readable if os.path.exists(p)}, key=lambda p: len(p.parts)
    ):
        out += ["--ro-bind", str(path), str(path)]
    for path in sorted({_real(p) for p in masked if os.path.exists(p)}):
        # an empty regular file: /dev/null bound in is unreadable (the mount is nodev)
        out += ["--ro-bind", str(_empty_file()), str(path)]
    for path in sorted({_real(p) for p in writable}, key=lambda p: len(p.parts)):
        out += ["--bind", str(path), str(path)]
    out += ["--chdir", str(_real(cwd)), "--", *argv]
    return out


@functools.lru_cache(maxsize=1)
def _empty_file() -> Path:
    fd, name = tempfile.mkstemp(prefix="agentos-sandbox-empty-")
    os.close(fd)
    os.chmod(name, 0o444)
    return Path(name)


def _python_dirs(hidden: Iterable[Path]) -> list[Path]:
    """The running Python's directories that a hidden path (or the private /tmp) would
    otherwise cover: a virtualenv made with `mktemp -d` lives under /tmp."""
    homes = {_real(p) for p in hidden} | {_real(t) for t in ("/tmp", "/var/tmp")}
    dirs = {_real(sys.prefix), _real(sys.base_prefix)}
    if os.environ.get("VIRTUAL_ENV"):
        dirs.add(_real(os.environ["VIRTUAL_ENV"]))
    # Never bring back AGENTOS_HOME itself or anything above a hidden path.
    return sorted(d for d in dirs if any(_under(d, h) and d != h for h in homes))


async def run_sandboxed(
    command: str | Sequence[str],
    *,
    worktree: Path,
    cwd: Path | None = None,
    timeout: float,
    output_cap: int = 16_000,
    network: bool = False,
    writable: Sequence[Path] = (),
    readable: Sequence[Path] = (),
    hidden: Sequence[Path] = (),
    masked: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
    stdin_data: bytes | None = None,
    settings: SandboxSettings | None = None,
) -> ProcessResult:
    """Run a command a model caused, sandboxed: only `worktree` (and `writable`) writable.

    `command` is an argv list, or a string run by /bin/sh -c. `cwd` (default: the
    worktree) must lie inside the worktree. `hidden` adds to the default hidden paths,
    `readable` binds paths back read-only, `masked` covers files with an empty one.
    `env` is added verbatim to the allow-listed environment. Raises SandboxUnavailable
    when no sandbox can run and AGENTOS_UNSAFE_NO_SANDBOX is not set, and
    ProcessStartError when the program cannot start.
    """
    settings = settings or SandboxSettings()
    argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
    root = _real(worktree)
    where = _real(cwd) if cwd is not None else root
    if not _under(where, root):
        raise ValueError(f"cwd {where} is outside the worktree {root}")
    full_env = sandbox_env(env)
    status = sandbox_status(settings)
    if not status.available:
        if not status.unsafe_opt_in:
            raise SandboxUnavailable(
                f"no sandbox can run here: {status.reason}. Commands are refused; an "
                f"operator may set {UNSAFE_SETTING}=1 to run them unsandboxed (unsafe: they "
                "can then read the agent's credentials and reach the database)"
            )
        log.warning(
            "running a command unsandboxed (%s=1): %s",
            UNSAFE_SETTING,
            status.reason,
            extra={"action": "sandbox.unsafe"},
        )
        # Without a sandbox HOME must exist on the host: use the real one.
        full_env["HOME"] = str(Path.home())
        full_env.pop("TMPDIR")
        full_env.update(env or {})
        return await run_process(
            argv, cwd=where, env=full_env, timeout=timeout, cap=output_cap, stdin_data=stdin_data
        )
    all_hidden = [*default_hidden(settings), *hidden]
    exe = shutil.which(settings.sandbox_bwrap) or settings.sandbox_bwrap
    wrapped = bwrap_argv(
        argv,
        bwrap=exe,
        cwd=where,
        writable=[root, *writable],
        readable=readable,
        hidden=all_hidden,
        masked=masked,
        network=network,
        user_namespace=status.user_namespace,
    )
    # bubblewrap's environment is the command's: it hands it on (and /proc/1/environ
    # inside shows the same)
    result = await run_process(
        wrapped, cwd=where, env=full_env, timeout=timeout, cap=output_cap, stdin_data=stdin_data
    )
    return ProcessResult(
        exit_code=result.exit_code,
        output=result.output,
        timed_out=result.timed_out,
        lingering_killed=result.lingering_killed,
        dropped_bytes=result.dropped_bytes,
        seconds=result.seconds,
        sandboxed=True,
    )


if __name__ == "__main__":  # pragma: no cover - the operator's entry point
    from agentos.tools.probes import main

    raise SystemExit(main(sys.argv[1:]))
