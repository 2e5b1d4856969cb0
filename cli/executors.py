"""`agentos executor list`: the coding agents a role can run as its executor."""

from __future__ import annotations

import subprocess
from typing import Any

import click
from agentos.cli.common import echo_json, handle_errors

VERSION_TIMEOUT = 20.0


@click.group("executor", context_settings={"help_option_names": ["-h", "--help"]})
def executor() -> None:
    """External coding agents (Claude Code, Codex, ...) as executors of a role."""


def _version(argv: list[str]) -> str | None:
    try:
        r = subprocess.run(
            argv, capture_output=True, text=True, timeout=VERSION_TIMEOUT,
            stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [ln.strip() for ln in (r.stdout or r.stderr).splitlines() if ln.strip()]
    return lines[-1][:80] if r.returncode == 0 and lines else None


@executor.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list).")
@handle_errors
def executor_list(as_json: bool) -> None:
    """Every executor: its program (on PATH or as a role configures it), version, needs."""
    from agentos.agents.config import EXECUTORS, AgentSettings, ExecutorOptions, load_role
    from agentos.agents.config import available_roles as roles_of
    from agentos.agents.executors import get_adapter, resolve_binary

    settings = AgentSettings()
    configured: dict[str, tuple[list[str], ExecutorOptions]] = {}
    for name in roles_of(settings):
        try:
            role = load_role(name, settings)
        except Exception:
            continue
        roles, opts = configured.get(role.executor, ([], role.executor_options))
        configured[role.executor] = ([*roles, role.name], opts)
    rows: list[dict[str, Any]] = []
    for name in EXECUTORS:
        roles, opts = configured.get(name, ([], ExecutorOptions()))
        if name == "builtin":
            rows.append({"executor": name, "found": True, "binary": None, "version": None,
                         "needs": "the role's litellm model and its provider key",
                         "resume": True, "roles": roles})  # fmt: skip
            continue
        adapter = get_adapter(name)
        binary = resolve_binary(adapter, opts)
        version = _version(adapter.version_argv(binary)) if binary and name != "command" else None
        rows.append(
            {
                "executor": name,
                "found": binary is not None,
                "binary": binary,
                "version": version,
                "needs": adapter.needs,
                "resume": adapter.resumable,
                "roles": roles,
            }
        )
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        where = r["binary"] or ("built in" if r["executor"] == "builtin" else "not found")
        version = f" {r['version']}" if r["version"] else ""
        used = f"  [roles: {', '.join(r['roles'])}]" if r["roles"] else ""
        click.echo(f"{r['executor']:<12} {where}{version}{used}")
        click.echo(f"{'':<12} needs: {r['needs']}")
