"""Role configuration: a role is data (YAML), not a subclass.

Roles ship in the package (agents/roles/*.yaml) and are overridden file by file from
AGENTOS_HOME/roles/ and AGENTOS_ROLES_DIR (the Helm chart mounts a ConfigMap there).
AGENTOS_MODEL overrides the model of every role (and empties their fallbacks);
AGENTOS_LLM_BASE_URL / AGENTOS_LLM_API_KEY point every call at one OpenAI-compatible
server (vLLM, Ollama, LM Studio).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from agentos.kernel import errors
from agentos.kernel.models import first_error
from agentos.kernel.settings import Settings
from agentos.tools.mcp import McpServerConfig, check_server_name
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator


class Limits(BaseModel):
    """What one agent may spend."""

    model_config = ConfigDict(extra="forbid")

    max_iterations: int = Field(default=30, ge=1, le=1000)
    max_tokens_per_call: int = Field(default=4096, ge=16)
    task_budget_usd: float = Field(default=1.0, ge=0)
    agent_daily_budget_usd: float = Field(default=10.0, ge=0)
    call_estimate_usd: float = Field(default=0.02, ge=0)
    repeat_limit: int = Field(default=4, ge=2, le=100)
    shell_timeout: float = Field(default=120.0, gt=0, le=3600)


class Heartbeat(BaseModel):
    """A cron schedule that wakes the role only when its precondition finds work."""

    model_config = ConfigDict(extra="forbid")

    cron: str
    precondition: str | None = None


class Prompts(BaseModel):
    """Jinja2 templates (file names under agents/prompts or the roles dir)."""

    model_config = ConfigDict(extra="forbid")

    system: str
    task: str


EXECUTORS = ("builtin", "claude-code", "codex", "aider", "opencode", "gemini-cli", "command")


class ExecutorOptions(BaseModel):
    """How an external coding agent runs a stage (ignored by `builtin`)."""

    model_config = ConfigDict(extra="forbid")

    binary: str | None = Field(default=None, description="Path or name; default per executor.")
    model: str | None = Field(default=None, description="The CLI's model flag; default: its own.")
    args: list[str] = Field(default_factory=list, description="Extra arguments, appended.")
    max_turns: int | None = Field(default=None, ge=1, le=10_000)
    timeout: float = Field(default=3600.0, gt=0, le=86_400)
    # `command` only: argv with {prompt}, {prompt_file}, {worktree}, {task_id} placeholders
    command: list[str] | None = None
    # environment variables passed through to the CLI beyond what the executor needs (its
    # provider keys come from the secrets store first, then the environment)
    pass_env: list[str] = Field(default_factory=list)
    # a template (roles dir or agents/prompts) replacing the executor's instructions,
    # rendered with the same variables as the role's prompts; the task prompt follows it
    prompt: str | None = None

    @field_validator("pass_env")
    @classmethod
    def _not_ours(cls, names: list[str]) -> list[str]:
        for n in names:
            if n.upper().startswith("AGENTOS_"):
                raise ValueError(f"{n} is AgentOS's own; an executor never gets it")
        return names


class RoleConfig(BaseModel):
    """One role: model, tools, prompts, limits."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    description: str = ""
    model: str
    fallbacks: list[str] = Field(default_factory=list)
    heartbeat_model: str | None = None
    temperature: float = Field(default=0.2, ge=0, le=2)
    concurrency: int = Field(default=1, ge=1, le=64)
    leader_only: bool = False
    # the stage this role's agents run on the tasks they claim (a task in review is
    # always a review stage): plan (goals into subtasks), work (code), review (judge)
    stage: Literal["plan", "work", "review"] = "work"
    tools: list[str] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list)
    prompts: Prompts
    heartbeat: Heartbeat | None = None
    limits: Limits = Field(default_factory=Limits)
    check_command: str | None = None
    max_rejections: int = Field(default=3, ge=1, le=100)
    # The merge gate of a review role (agents/gate.py): `human` holds every approved
    # merge for a person (`agentos task approve`); `auto` merges at once, except what
    # the tiers hold: more than auto_merge_max_lines changed lines, or a file outside
    # auto_merge_paths (fnmatch globs; `*` also matches `/`). A task's own
    # `--approval human|auto` beats both.
    merge: Literal["auto", "human"] = "auto"
    auto_merge_max_lines: int | None = Field(default=None, ge=0)
    auto_merge_paths: list[str] = Field(default_factory=list)
    # What the role's commands and browser may reach (docs/security.md): sandboxed
    # commands get no network unless `network`; the browser refuses loopback and
    # private addresses unless `allow_private_network` or the host:port is listed.
    network: bool = False
    allow_private_network: bool = False
    private_hosts: list[str] = Field(default_factory=list)
    executor: str = Field(default="builtin", description="Who runs the work stage.")
    executor_options: ExecutorOptions = Field(default_factory=ExecutorOptions)
    # MCP servers whose tools the role's agents get next to the built-ins, named
    # mcp__<server>__<tool> (tools/mcp.py); executors get them in their own config
    mcp_servers: dict[str, McpServerConfig] = Field(default_factory=dict)
    # skills (`agentos skill add`) put into every prompt of the role (with a task's own)
    skills: list[str] = Field(default_factory=list)

    @field_validator("mcp_servers")
    @classmethod
    def _server_names(cls, servers: dict[str, McpServerConfig]) -> dict[str, McpServerConfig]:
        for name in servers:
            check_server_name(name)
        return servers

    @field_validator("tools", "actions", "skills")
    @classmethod
    def _no_duplicates(cls, names: list[str]) -> list[str]:
        seen: set[str] = set()
        for n in names:
            if n in seen:
                raise ValueError(f"duplicate name {n!r}")
            seen.add(n)
        return names

    @field_validator("tools")
    @classmethod
    def _builtin_tools(cls, names: list[str]) -> list[str]:
        for n in names:
            if n.startswith("mcp__"):
                raise ValueError(
                    f"{n}: MCP tools come from mcp_servers (list a server's tools under "
                    "its own tools:)"
                )
        return names

    @field_validator("executor")
    @classmethod
    def _known_executor(cls, value: str) -> str:
        if value not in EXECUTORS:
            raise ValueError(f"unknown executor {value!r} (known: {', '.join(EXECUTORS)})")
        return value


class AgentSettings(Settings):
    """Kernel settings plus what agents need (all AGENTOS_*)."""

    model: str | None = Field(default=None, description="Model for every role (overrides YAML).")
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    workspace: Path | None = Field(default=None, description="Git repository agents work on.")
    workspace_remote: str | None = Field(
        default=None, description="Git URL shared by every machine (pods); unset: local only."
    )
    base_branch: str | None = Field(
        default=None,
        description="Branch the team merges into; unset: the workspace's HEAD branch.",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$",
    )
    check_command: str | None = Field(
        default=None,
        description="The reviewer's check for this workspace (overrides .agentos.yaml and "
        "the role's check_command).",
    )
    roles_dir: Path | None = None
    demo: bool = False
    health_port: int = Field(
        default=0, ge=0, le=65535, description="`agent run` serves /livez, /readyz here."
    )
    scaler_role: str = Field(default="worker", description="The role the leader scales.")
    scripted_delay: float = Field(
        default=0.0, ge=0, le=3600, description="Tests: the scripted worker waits this long."
    )

    @property
    def workspace_path(self) -> Path:
        """The workspace repository (default: AGENTOS_HOME/workspace)."""
        return self.workspace or (self.home / "workspace")

    @property
    def worktrees_path(self) -> Path:
        """Where task worktrees live."""
        return self.home / "worktrees"


def _role_dirs(settings: AgentSettings) -> list[Path]:
    dirs = [settings.home / "roles"]
    if settings.roles_dir is not None:
        dirs.append(settings.roles_dir)
    return [d for d in dirs if d.is_dir()]


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice (PyYAML keeps the last one silently: two
    MCP servers of one name would be one)."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _unique_mapping,
)


def _read_yaml(text: str, where: str, role: str) -> Any:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise errors.BadInput(f"role {role}: {where}{line}: {problem}") from None


def load_role(name: str, settings: AgentSettings) -> RoleConfig:
    """The role's config: shipped YAML overridden by the roles directories."""
    data: dict[str, Any] | None = None
    shipped = resources.files("agentos.agents").joinpath("roles", f"{name}.yaml")
    if shipped.is_file():
        data = _read_yaml(shipped.read_text(encoding="utf-8"), f"{name}.yaml", name)
    for d in _role_dirs(settings):
        f = d / f"{name}.yaml"
        if f.is_file():
            override = _read_yaml(f.read_text(encoding="utf-8"), str(f), name) or {}
            if not isinstance(override, dict):
                raise errors.BadInput(f"role {name}: {f}: not a mapping of settings")
            data = {**(data or {}), **override}
    if data is None:
        known = ", ".join(sorted(available_roles(settings)))
        raise errors.BadInput(f"unknown role {name!r} (known: {known})")
    try:
        role = RoleConfig.model_validate(data)
    except ValidationError as exc:
        raise errors.BadInput(f"role {name}: {first_error(exc)}") from exc
    problems = _check_tools_and_actions(role)
    if problems:
        raise errors.BadInput(f"role {name}: {problems[0]}")
    model = settings.model
    if settings.demo:
        model = "agentos/scripted"
    if model:
        role = role.model_copy(update={"model": model, "fallbacks": [], "heartbeat_model": model})
    return role


def with_agent_model(role: RoleConfig, settings: AgentSettings, model: str | None) -> RoleConfig:
    """The role as one agent runs it: its own model (`agentos agent create --model`)
    replaces the role's (fallbacks dropped, heartbeats too) and beats AGENTOS_MODEL;
    only AGENTOS_DEMO (the scripted model for everyone) beats it."""
    if not model or settings.demo:
        return role
    return role.model_copy(update={"model": model, "fallbacks": [], "heartbeat_model": model})


def _check_tools_and_actions(role: RoleConfig) -> list[str]:
    """A typo in `tools:` or `actions:` is an error when the role loads, not when a
    task starts; so is an action that cannot end the role's stage."""
    from agentos.agents.terminal import check_actions
    from agentos.tools.registry import ALL_TOOLS

    problems = [
        f"unknown tool {n!r} (known: {', '.join(sorted(ALL_TOOLS))})"
        for n in role.tools
        if n not in ALL_TOOLS
    ]
    return problems + check_actions(role.actions, role.stage)


def available_roles(settings: AgentSettings) -> list[str]:
    """Names of every role that can be loaded."""
    names = {
        p.name.removesuffix(".yaml")
        for p in resources.files("agentos.agents").joinpath("roles").iterdir()
        if p.name.endswith(".yaml")
    }
    for d in _role_dirs(settings):
        names |= {p.stem for p in d.glob("*.yaml")}
    return sorted(names)


def team_roles(
    *, orchestrators: int, workers: int, reviewers: int
) -> list[tuple[str, str | None, int]]:
    """(role, name, slots) of a local team: orchestrator, worker-1..N, reviewer(-1..N).

    One worker keeps the name worker-1 (what the README talks to); N are named
    worker-1..N by `--name worker`. Each orchestrator is a role entry of its own with
    one slot (leadership decides which one plans)."""
    out: list[tuple[str, str | None, int]] = [
        ("orchestrator", "orchestrator" if orchestrators == 1 else f"orchestrator-{i}", 1)
        for i in range(1, orchestrators + 1)
    ]
    if workers:
        out.append(("worker", "worker-1" if workers == 1 else "worker", workers))
    if reviewers:
        out.append(("reviewer", "reviewer", reviewers))
    return out
