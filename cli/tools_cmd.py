"""`agentos tool list` (what a role's agents can do) and `agentos doctor` (is this
install safe and able to run a team)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import click
from agentos.cli.common import echo_json, fail, handle_errors, run


@click.group("tool")
def tool() -> None:
    """The tools agents get."""


@tool.command("list")
@click.option("--role", "role_name", required=True, help="The role whose tools to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list).")
@handle_errors
def tool_list(role_name: str, as_json: bool) -> None:
    """Every tool (and terminal action) a role's agents get, with its source."""
    from agentos.agents.config import AgentSettings, load_role
    from agentos.tools.registry import get_tools
    from agentos.tools.sandbox import sandbox_status

    role = load_role(role_name, AgentSettings())
    try:
        tools = get_tools(role.tools)
    except ValueError as exc:
        fail(f"role {role.name}: {exc}", 2)
    sandbox = sandbox_status()
    rows: list[dict[str, Any]] = []
    for t in tools:
        row: dict[str, Any] = {
            "name": t.name,
            "source": "built-in",
            "kind": "tool",
            "description": t.description.split(". ")[0].rstrip("."),
        }
        if t.name == "run_command":
            row["sandbox"] = sandbox.describe()
            row["enabled"] = sandbox.runs_commands
        rows.append(row)
    for action in role.actions:
        rows.append(
            {
                "name": action,
                "source": "built-in",
                "kind": "action",
                "description": "ends the stage",
            }
        )
    if as_json:
        echo_json(rows)
        return
    click.echo(
        f"role {role.name}: executor {role.executor}, network {'on' if role.network else 'off'}"
    )
    for r in rows:
        flag = "" if r.get("enabled", True) else "  [DISABLED: no sandbox]"
        click.echo(f"  {r['name']:<18} {r['kind']:<7} {r['source']:<9} {r['description']}{flag}")
    click.echo(sandbox.describe())


@dataclass(frozen=True)
class Check:
    """One line of `agentos doctor`."""

    name: str
    ok: bool
    detail: str


def _git_version() -> tuple[int, ...]:
    out = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False)
    digits = out.stdout.strip().split()[-1] if out.stdout.strip() else "0"
    return tuple(int(p) for p in digits.split(".")[:2] if p.isdigit())


async def _checks(probe: bool) -> list[Check]:
    from agentos.agents.config import AgentSettings
    from agentos.agents.workspace import GitError, Workspace
    from agentos.cli.common import open_kernel
    from agentos.kernel import migrate as mig
    from agentos.kernel.errors import KernelError
    from agentos.tools.sandbox import sandbox_status

    out: list[Check] = []
    s = AgentSettings()
    try:
        kernel = await open_kernel(migrate=False, pool_max=1)
    except KernelError as exc:
        out.append(Check("database", False, str(exc)))
        kernel = None
    if kernel is not None:
        try:
            async with kernel.connection() as conn:
                st = await mig.status(conn)
            out.append(
                Check("database", st.ok, "reachable, schema up to date" if st.ok else
                      f"reachable, migrations pending ({', '.join(st.pending)}): agentos db migrate")
            )  # fmt: skip
        finally:
            await kernel.close()
    version = _git_version()
    out.append(
        Check("git", version >= (2, 38), f"git {'.'.join(map(str, version))} "
              "(merges need 2.38+: git merge-tree --write-tree)")
    )  # fmt: skip
    try:
        ws = Workspace(s.workspace_path, s.worktrees_path, s.workspace_remote,
                       base_branch=s.base_branch)  # fmt: skip
        if (s.workspace_path / ".git").exists():
            await ws.refuse_dangerous_config()
            base = await ws._find_base_branch()
            out.append(Check("workspace", True, f"{s.workspace_path}, base branch {base}"))
        else:
            out.append(Check("workspace", True, f"{s.workspace_path} (created at first start)"))
    except GitError as exc:
        out.append(Check("workspace", False, str(exc)))
    status = await asyncio.to_thread(sandbox_status)
    out.append(Check("sandbox", status.available, status.describe().removeprefix("sandbox: ")))
    if probe and status.available:
        # the probes' own entry point plants the canary in a fresh process environment,
        # the one /proc/<pid>/environ shows
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agentos.tools.sandbox", "probe",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        text = (await proc.communicate())[0].decode(errors="replace")
        for line in text.splitlines():
            verdict, _, rest = line.partition("  ")
            if verdict in ("PASS", "FAIL"):
                name, _, detail = rest.partition(": ")
                out.append(Check(f"probe {name}", verdict == "PASS", detail))
        if proc.returncode not in (0, 1):
            out.append(Check("probes", False, text.strip().splitlines()[-1] if text else "failed"))
    out.append(
        Check("bwrap", shutil.which("bwrap") is not None, shutil.which("bwrap") or "not found")
    )
    return out


@click.command("doctor")
@click.option("--no-probes", is_flag=True, help="Skip the sandbox escape probes.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list).")
@handle_errors
def doctor(no_probes: bool, as_json: bool) -> None:
    """Check this install: database, git, workspace, sandbox and its escape probes.

    Exit 0 when every check passes, 1 otherwise.
    """
    checks = run(_checks(probe=not no_probes))
    if as_json:
        echo_json([c.__dict__ for c in checks])
    else:
        for c in checks:
            click.echo(f"{'PASS' if c.ok else 'FAIL'}  {c.name}: {c.detail}")
    if not all(c.ok for c in checks):
        raise SystemExit(1)
