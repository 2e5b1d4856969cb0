"""What a role's agents get beyond the built-in tools, stage by stage.

* The built-ins the role lists, less the browser tools where no browser can run
  (`builtin_tools`; `agentos tool list` says why).
* MCP servers (`mcp_servers:`, tools/mcp.py): started for a stage of the builtin loop,
  their tools added next to the built-ins, and stopped when the stage ends; for a work
  or review stage run by an executor, handed to the executor's CLI as plans (commands, env and
  headers with their secrets) that its adapter writes into the CLI's own MCP config.
* An executor's provider keys (ANTHROPIC_API_KEY, ...) from the secrets store, scoped to
  the stage's role, agent and task; the process environment is the fallback.
* Skills: the role's `skills:` and the task's own (`agentos task create --skill`), put
  into the task prompt (`skills` in the templates): bodies while they fit, names and
  descriptions to read with `read_skill` beyond that.

Before any of it the redactor learns every secret this process's key opens, so no value
is written or sent by this process even if a person pasted one into a task.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentos.agents.config import RoleConfig
from agentos.kernel import errors
from agentos.kernel import secrets as ksecrets
from agentos.kernel import skills as kskills
from agentos.kernel.db import Kernel
from agentos.kernel.models import Task
from agentos.tools import browser
from agentos.tools.base import Tool
from agentos.tools.mcp import McpToolset, McpUnavailable, resolve_plans, server_readable
from agentos.tools.registry import get_tools

log = logging.getLogger(__name__)

SKILLS_INLINE_CHARS = 12_000  # skill bodies put into a prompt, in all; the rest are listed
MAX_TASK_SKILLS = 20


def builtin_tools(role: RoleConfig) -> tuple[list[Tool], dict[str, str]]:
    """The role's built-in tools that can run here, and those that cannot, with why."""
    tools = get_tools(role.tools)
    missing: dict[str, str] = {}
    if any(t.name.startswith("browser_") for t in tools):
        why = browser.unavailable()
        if why is not None:
            missing = {t.name: why for t in tools if t.name.startswith("browser_")}
            tools = [t for t in tools if t.name not in missing]
    return tools, missing


@dataclass
class StageExtras:
    """What a stage gets on top of the runtime's built-in tools."""

    tools: list[Tool] = field(default_factory=list)
    tool_extra: dict[str, Any] = field(default_factory=dict)
    template_vars: dict[str, Any] = field(default_factory=dict)


async def prime_redactor(kernel: Kernel) -> None:
    """Register every secret this process's key opens (a bad key only warns here)."""
    try:
        async with kernel.connection() as conn:
            await ksecrets.prime_redactor(conn, kernel.settings)
    except ksecrets.SecretUnavailable as exc:
        log.warning("secrets: %s", exc)


async def stage_skills(kernel: Kernel, role: RoleConfig, task: Task) -> list[dict[str, Any]]:
    """The role's and the task's skills for the prompt: [{name, description, body|None}]."""
    names = list(dict.fromkeys([*role.skills, *_task_skills(task)]))
    out: list[dict[str, Any]] = []
    budget = SKILLS_INLINE_CHARS
    for name in names:
        try:
            async with kernel.connection() as conn:
                skill = await kskills.get_skill(conn, name)
        except errors.NotFound:
            log.warning("task #%s: skill %r is gone; not in the prompt", task.id, name)
            continue
        inline = len(skill.body) <= budget
        if inline:
            budget -= len(skill.body)
        out.append(
            {
                "name": skill.name,
                "description": skill.description,
                "body": skill.body if inline else None,
            }
        )
    return out


def _task_skills(task: Task) -> list[str]:
    raw = (task.metadata or {}).get("skills") or []
    return [str(s) for s in raw if isinstance(s, str)][:MAX_TASK_SKILLS]


async def open_stage(
    stack: contextlib.AsyncExitStack,
    kernel: Kernel,
    role: RoleConfig,
    *,
    agent: str,
    task: Task,
    stage: str,
    worktree: Path,
) -> StageExtras:
    """Everything a stage gets beyond the built-ins; what it starts is closed by `stack`.

    McpUnavailable (a server that cannot start, a secret that is not set or cannot be
    opened) is the stage's to report: the caller blocks the task with the reason."""
    try:
        return await _open_stage(stack, kernel, role, agent=agent, task=task, stage=stage,
                                 worktree=worktree)  # fmt: skip
    except ksecrets.SecretUnavailable as exc:  # the key is missing or another one
        raise McpUnavailable(f"role {role.name}: {exc}") from None


async def _open_stage(
    stack: contextlib.AsyncExitStack,
    kernel: Kernel,
    role: RoleConfig,
    *,
    agent: str,
    task: Task,
    stage: str,
    worktree: Path,
) -> StageExtras:
    await prime_redactor(kernel)
    extras = StageExtras(template_vars={"skills": await stage_skills(kernel, role, task)})
    plans = await resolve_plans(
        kernel, role.mcp_servers, role=role.name, agent=agent, task_id=task.id, worktree=worktree
    )
    if role.executor != "builtin" and stage in ("work", "review"):  # as runner.handle_task
        from agentos.agents.executors.claude_code import MCP_CONFIG

        # the CLI's MCP config holds the servers' secrets: gone when the stage ends
        config = kernel.settings.home / "executors" / f"task-{task.id}" / MCP_CONFIG
        stack.callback(lambda: config.unlink(missing_ok=True))
        extras.tool_extra["mcp_servers"] = plans
        extras.tool_extra["executor_env"] = await executor_env(
            kernel, role, agent=agent, task_id=task.id
        )
        extras.tool_extra["executor_readable"] = [
            r for p in plans for r in server_readable(p, never_under=[kernel.settings.home])
        ]
        return extras
    if plans:
        toolset = await stack.enter_async_context(McpToolset(plans, role=role.name))
        extras.tools = list(toolset.tools)
    return extras


async def executor_env(
    kernel: Kernel, role: RoleConfig, *, agent: str, task_id: int | None
) -> dict[str, str]:
    """The executor's provider variables and pass_env names found in the secrets store."""
    from agentos.agents.executors.registry import get_adapter

    try:
        adapter = get_adapter(role.executor)
    except ValueError:
        return {}
    names = [*adapter.provider_env, *role.executor_options.pass_env]
    async with kernel.connection() as conn:
        return await ksecrets.resolve(
            conn,
            kernel.settings,
            names,
            role=role.name,
            agent=agent,
            task_id=task_id,
            required=False,
        )


async def check_role(kernel: Kernel, role: RoleConfig, agents: list[str]) -> None:
    """At start: every secret the role names can resolve for some stage, every skill it
    lists exists; else BadInput (one line) before any task is claimed."""
    from agentos.tools.mcp import secret_names

    names = secret_names(role.mcp_servers)
    async with kernel.connection() as conn:
        missing = await ksecrets.unresolvable(conn, names, role=role.name, agents=agents)
        if missing:
            server = next(n for n, c in role.mcp_servers.items() if missing[0] in c.secret_names())
            raise McpUnavailable(
                f"role {role.name}: MCP server {server}: unknown secret {missing[0]} "
                f"(`agentos secret set {missing[0]} --scope role:{role.name}` sets it)"
            )
        if names:
            ksecrets.load_key(kernel.settings)  # no key here: say so now (SecretUnavailable)
        for name in role.skills:
            try:
                await kskills.get_skill(conn, name)
            except errors.NotFound:
                raise errors.BadInput(
                    f"role {role.name}: unknown skill {name!r} (`agentos skill add {name}` adds it)"
                ) from None


__all__ = [
    "McpUnavailable",
    "StageExtras",
    "builtin_tools",
    "check_role",
    "executor_env",
    "open_stage",
    "prime_redactor",
    "stage_skills",
]
