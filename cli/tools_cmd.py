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
    """Every tool (and terminal action) a role's agents get, with its source.

    Built-in tools that cannot run here (the browser without chromium) say why; the
    role's MCP servers are started to list their tools (`mcp:<server>`), or their error.
    """
    from agentos.agents.config import AgentSettings, load_role
    from agentos.agents.toolbox import builtin_tools
    from agentos.tools.sandbox import sandbox_status

    settings = AgentSettings()
    role = load_role(role_name, settings)
    try:
        tools, unavailable = builtin_tools(role)
    except ValueError as exc:
        fail(f"role {role.name}: {exc}", 2)
    sandbox = sandbox_status()
    rows: list[dict[str, Any]] = []
    by_name = {t.name: t for t in tools}
    from agentos.tools.registry import ALL_TOOLS

    for name in role.tools:
        t = by_name.get(name) or ALL_TOOLS[name]
        row: dict[str, Any] = {
            "name": t.name,
            "source": "built-in",
            "kind": "tool",
            "description": t.description.split(". ")[0].rstrip("."),
        }
        if t.name == "run_command":
            row["sandbox"] = sandbox.describe()
            row["enabled"] = sandbox.runs_commands
        if name in unavailable:
            row["enabled"] = False
            row["unavailable"] = unavailable[name]
        rows.append(row)
    if role.mcp_servers:
        rows.extend(run(_mcp_rows(settings, role)))
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
    width = max([18, *(len(r["name"]) for r in rows)])
    for r in rows:
        if r.get("error"):
            flag = f"  [error: {r['error']}]"
        elif r.get("unavailable"):
            flag = f"  [unavailable: {r['unavailable']}]"
        elif not r.get("enabled", True):
            flag = "  [DISABLED: no sandbox]"
        else:
            flag = ""
        click.echo(
            f"  {r['name']:<{width}} {r['kind']:<7} {r['source']:<9} {r['description']}{flag}"
        )
    click.echo(sandbox.describe())


async def _mcp_rows(settings: Any, role: Any) -> list[dict[str, Any]]:
    """Start each of the role's MCP servers once: its tools, or why it cannot be used."""
    import tempfile
    from pathlib import Path

    from agentos.cli.common import open_kernel
    from agentos.tools import mcp

    rows: list[dict[str, Any]] = []
    plans: list[mcp.ServerPlan] = []
    failed: dict[str, str] = {}
    kernel = await open_kernel(pool_max=1) if mcp.secret_names(role.mcp_servers) else None
    with tempfile.TemporaryDirectory(prefix="agentos-tools-") as scratch:
        where = settings.workspace_path if settings.workspace_path.is_dir() else Path(scratch)
        try:
            for name, cfg in role.mcp_servers.items():
                try:
                    plans += await mcp.resolve_plans(
                        kernel, {name: cfg}, role=role.name, agent=None, task_id=None,
                        worktree=where,
                    )  # fmt: skip
                except mcp.McpUnavailable as exc:
                    failed[name] = str(exc)
        finally:
            if kernel is not None:
                await kernel.close()
        reports = {r.name: r for r in await mcp.discover(plans, role=role.name)}
    for name, cfg in role.mcp_servers.items():
        source = f"mcp:{name}"
        report = reports.get(name)
        if report is not None and report.ok:
            for t in report.tools:
                rows.append({
                    "name": t.name, "source": source, "kind": "tool", "server": name,
                    "description": t.description.split(". ")[0].rstrip("."),
                })  # fmt: skip
            continue
        error = failed.get(name) or (report.error if report else "not started")
        rows.append({
            "name": f"{mcp.PREFIX}{name}__*", "source": source, "kind": "server", "server": name,
            "description": "stdio" if cfg.command else "http", "enabled": False, "error": error,
        })  # fmt: skip
    return rows


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
