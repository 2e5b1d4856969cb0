"""MCP servers per role: their tools next to the built-ins, called through the `mcp` client.

A role lists servers under `mcp_servers:` (agents/config.py), each a stdio command or a
streamable-HTTP URL:

```yaml
mcp_servers:
  time:
    command: mcp-server-time
  git:
    command: mcp-server-git
    args: [--repository, "{worktree}"]
  issues:
    url: https://mcp.example.com/mcp
    headers: {Authorization: "Bearer {secret:ISSUES_TOKEN}"}
    timeout: 30
```

Protocol
--------
* Values in `env:` and `headers:` may be `secret:NAME` (the whole value) or contain
  `{secret:NAME}`; `args:`, `env:` and `cwd:` may contain `{worktree}` and `{task_id}`.
  Secrets resolve for the stage's role, agent and task (kernel/secrets.py, most
  specific scope first) and are registered with the redactor before any server starts.
  A secret in `args:` or `url:` is refused (argv is visible to every process, URLs are
  logged).
* A stdio server gets only its own environment: the MCP client's minimal inherited set
  (HOME, LOGNAME, PATH, SHELL, TERM, USER), then its `env:`. Nothing named AGENTOS_*,
  no database URL, no provider key unless the role gives it one. Its stderr goes to a
  private file whose tail (redacted) explains a failure to start.
* Each server is held open by a task of its own (the `mcp` client's task groups must
  be entered and left by one task), started at the beginning of a stage and closed at
  its end (`McpToolset`). Its tools become `Tool`s named `mcp__<server>__<tool>`
  (server names have no `_`, so names cannot collide with each other or a built-in).
* A call is bounded by the server's `timeout` and its output by `output_cap`; the result
  is text. A server that dies mid-call makes that call an error result ("stopped during
  the call") and is started again for the next call (at most MAX_RESTARTS times a stage).
* A server that cannot start, or does not answer `initialize`/`tools/list` within
  `startup_timeout`, is `McpUnavailable`: one line naming the role, the server and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO, cast

from agentos.kernel import redact
from agentos.kernel.errors import BadInput
from agentos.tools.base import Tool, ToolContext, ToolError, cap_text
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

log = logging.getLogger(__name__)

PREFIX = "mcp__"
SERVER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
SECRET_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,127}"
WHOLE_SECRET = re.compile(rf"^secret:({SECRET_NAME})$")
EMBEDDED_SECRET = re.compile(rf"\{{secret:({SECRET_NAME})\}}")
ANY_SECRET_MENTION = re.compile(r"\{secret:|^secret:")
PLACEHOLDERS = re.compile(r"\{(worktree|task_id)\}")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
TOOL_NAME_MAX = 64  # what function-calling APIs accept
MAX_RESTARTS = 3
MAX_TOOL_PAGES = 20
STDERR_TAIL = 1500


class McpUnavailable(BadInput):
    """An MCP server of a role cannot be used: bad reference, failed start, no answer."""


# ------------------------------------------------------------ configuration --


class McpServerConfig(BaseModel):
    """One MCP server of a role: a stdio command or a streamable-HTTP URL."""

    model_config = ConfigDict(extra="forbid")

    command: str | None = Field(default=None, description="The program (stdio transport).")
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="Values may name secrets.")
    cwd: str | None = Field(default=None, description="Default: the task's worktree.")
    url: str | None = Field(default=None, description="Streamable-HTTP endpoint.")
    headers: dict[str, str] = Field(default_factory=dict, description="May name secrets.")
    timeout: float = Field(default=60.0, gt=0, le=3600, description="Seconds per call.")
    startup_timeout: float = Field(default=30.0, gt=0, le=600)
    output_cap: int = Field(default=16_000, ge=100, le=1_000_000)
    tools: list[str] | None = Field(default=None, description="Only these tools (default all).")

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        for k, v in env.items():
            if not ENV_NAME.match(k):
                raise ValueError(f"{k!r} is not an environment variable name")
            if k.upper().startswith("AGENTOS_"):
                raise ValueError(f"{k} is AgentOS's own; an MCP server never gets AGENTOS_*")
            _check_refs(k, v)
        return env

    @field_validator("headers")
    @classmethod
    def _header_names(cls, headers: dict[str, str]) -> dict[str, str]:
        for k, v in headers.items():
            if not HEADER_NAME.match(k):
                raise ValueError(f"{k!r} is not an HTTP header name")
            _check_refs(k, v)
        return headers

    @field_validator("args")
    @classmethod
    def _no_secret_in_args(cls, args: list[str]) -> list[str]:
        for a in args:
            if ANY_SECRET_MENTION.search(a):
                raise ValueError(
                    "a secret may not be an argument (every process can read argv); "
                    "give it to the server in env:"
                )
        return args

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, tools: list[str] | None) -> list[str] | None:
        if tools is not None:
            seen: set[str] = set()
            for t in tools:
                if t in seen:
                    raise ValueError(f"duplicate tool name {t!r}")
                seen.add(t)
        return tools

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of command (stdio) or url (streamable HTTP)")
        if self.url is not None:
            if not re.match(r"^https?://[^\s/]+", self.url):
                raise ValueError(f"url: {self.url!r} is not an http(s) URL")
            if ANY_SECRET_MENTION.search(self.url):
                raise ValueError("url: a secret may not be part of a URL; put it in headers:")
            if self.args or self.env or self.cwd:
                raise ValueError("args, env and cwd are for a command; an HTTP server has headers")
        elif self.headers:
            raise ValueError("headers are for an HTTP server (url:); a command has env")
        elif not self.command or not self.command.strip():
            raise ValueError("command: is empty")
        return self

    def secret_names(self) -> set[str]:
        """Every secret the server's env and headers name."""
        out: set[str] = set()
        for v in [*self.env.values(), *self.headers.values()]:
            m = WHOLE_SECRET.match(v)
            if m:
                out.add(m.group(1))
            out.update(EMBEDDED_SECRET.findall(v))
        return out


def _check_refs(where: str, value: str) -> None:
    if value.startswith("secret:") and not WHOLE_SECRET.match(value):
        raise ValueError(f"{where}: {value!r} is not a secret reference (secret:NAME)")
    rest = EMBEDDED_SECRET.sub("", value)
    if "{secret:" in rest:
        raise ValueError(f"{where}: a malformed secret reference (use {{secret:NAME}})")


def check_server_name(name: str) -> str:
    """A server name fit for `mcp__<server>__<tool>`; ValueError otherwise."""
    if not SERVER_NAME.match(name):
        raise ValueError(
            f"bad server name {name!r} (lowercase letters, digits and -, "
            "at most 31; no _ so tool names stay unambiguous)"
        )
    return name


def tool_name(server: str, remote: str) -> str:
    """The name the model sees: mcp__<server>__<tool>, characters outside [A-Za-z0-9_-]
    replaced by _."""
    return f"{PREFIX}{server}__{re.sub(r'[^A-Za-z0-9_-]', '_', remote)}"


# --------------------------------------------------------------- plans --


@dataclass(frozen=True)
class ServerPlan:
    """A server with its placeholders and secrets filled in: what is started."""

    name: str
    config: McpServerConfig
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # which env names and headers carry a secret (executors pass those apart)
    secret_env: frozenset[str] = frozenset()
    secret_headers: frozenset[str] = frozenset()

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "http"

    def describe(self) -> str:
        """`stdio: CMD ARGS` or `http: URL` (no secret is in either)."""
        if self.command is not None:
            return "stdio: " + " ".join([self.command, *self.args])
        return f"http: {self.url}"


def _fill(value: str, secrets: Mapping[str, str], places: Mapping[str, str]) -> str:
    m = WHOLE_SECRET.match(value)
    if m:
        return secrets[m.group(1)]
    value = EMBEDDED_SECRET.sub(lambda x: secrets[x.group(1)], value)
    return PLACEHOLDERS.sub(lambda x: places.get(x.group(1), x.group(0)), value)


def plan_server(
    name: str,
    cfg: McpServerConfig,
    secrets: Mapping[str, str],
    *,
    worktree: Path | None = None,
    task_id: int | None = None,
) -> ServerPlan:
    """The server as it will run, given resolved secrets (every name it needs)."""
    places = {"worktree": str(worktree) if worktree else "", "task_id": str(task_id or "")}
    no_secrets: Mapping[str, str] = {}
    args = tuple(_fill(a, no_secrets, places) for a in cfg.args)
    env = {k: _fill(v, secrets, places) for k, v in cfg.env.items()}
    headers = {k: _fill(v, secrets, places) for k, v in cfg.headers.items()}
    cwd = _fill(cfg.cwd, no_secrets, places) if cfg.cwd else (str(worktree) if worktree else None)
    return ServerPlan(
        name=name,
        config=cfg,
        command=cfg.command,
        args=args,
        env=env,
        cwd=cwd,
        url=cfg.url,
        headers=headers,
        secret_env=frozenset(k for k, v in cfg.env.items() if ANY_SECRET_MENTION.search(v)),
        secret_headers=frozenset(k for k, v in cfg.headers.items() if ANY_SECRET_MENTION.search(v)),
    )


def secret_names(servers: Mapping[str, McpServerConfig]) -> set[str]:
    """Every secret the servers name."""
    out: set[str] = set()
    for cfg in servers.values():
        out |= cfg.secret_names()
    return out


async def resolve_plans(
    kernel: Any,
    servers: Mapping[str, McpServerConfig],
    *,
    role: str,
    agent: str | None,
    task_id: int | None,
    worktree: Path | None,
) -> list[ServerPlan]:
    """Plans of a role's servers for one stage; McpUnavailable names a missing secret."""
    if not servers:
        return []
    from agentos.kernel import secrets as ksecrets

    names = secret_names(servers)
    values: dict[str, str] = {}
    if names:
        try:
            async with kernel.connection() as conn:
                values = await ksecrets.resolve(
                    conn, kernel.settings, names, role=role, agent=agent, task_id=task_id
                )
        except ksecrets.SecretUnavailable as exc:
            bad = next((n for n, c in servers.items() if any(s in str(exc) for s in
                        c.secret_names())), None)  # fmt: skip
            where = f"MCP server {bad} of role {role}" if bad else f"role {role}'s MCP servers"
            raise McpUnavailable(f"{where}: {exc}") from None
    return [
        plan_server(n, c, values, worktree=worktree, task_id=task_id) for n, c in servers.items()
    ]


# ------------------------------------------------------------- connection --


def _one_line(exc: BaseException) -> str:
    """A readable line for an exception (exception groups unwrapped)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, FileNotFoundError):
        return f"program not found ({exc.filename or text})"
    if isinstance(exc, PermissionError):
        return f"program not executable ({exc.filename or text})"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class McpConnection:
    """One running server, held open by a task of its own."""

    def __init__(self, plan: ServerPlan, *, role: str = "") -> None:
        self.plan = plan
        self.role = role
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._error: BaseException | None = None
        self._errlog: IO[str] | None = None
        self.restarts = 0
        self.dead = False

    @property
    def label(self) -> str:
        return f"MCP server {self.plan.name}" + (f" of role {self.role}" if self.role else "")

    def _stderr_tail(self) -> str:
        if self._errlog is None:
            return ""
        with contextlib.suppress(Exception):
            self._errlog.flush()
            self._errlog.seek(0)
            text = self._errlog.read()[-STDERR_TAIL:]
            lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
            return redact.redact_text(lines[-1]) if lines else ""
        return ""

    async def _hold(self) -> None:
        from mcp import Client
        from mcp.client.stdio import StdioServerParameters, stdio_client
        from mcp_types import Implementation

        plan = self.plan
        try:
            async with contextlib.AsyncExitStack() as stack:
                if plan.url is not None:
                    import httpx2
                    from mcp.client.streamable_http import streamable_http_client
                    from mcp.shared._httpx_utils import create_mcp_http_client

                    timeout = httpx2.Timeout(
                        plan.config.startup_timeout, read=max(plan.config.timeout, 30.0)
                    )
                    http = await stack.enter_async_context(
                        create_mcp_http_client(headers=dict(plan.headers), timeout=timeout)
                    )
                    transport: Any = streamable_http_client(plan.url, http_client=http)
                else:
                    assert plan.command is not None
                    params = StdioServerParameters(
                        command=plan.command, args=list(plan.args), env=dict(plan.env),
                        cwd=plan.cwd,
                    )  # fmt: skip
                    assert self._errlog is not None
                    transport = stdio_client(params, errlog=cast(TextIO, self._errlog))
                client = await stack.enter_async_context(
                    Client(
                        transport,
                        read_timeout_seconds=plan.config.timeout,
                        client_info=Implementation(name="agentos", version="0"),
                        cache=None,
                    )
                )
                self._client = client
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:  # kept, and reported by start() and call()
            self._error = exc
        finally:
            self._client = None
            self.dead = True
            self._ready.set()

    async def start(self) -> None:
        """Start (or restart) the server and wait for its handshake."""
        await self._shutdown()
        self._ready, self._stop = asyncio.Event(), asyncio.Event()
        self._error, self.dead = None, False
        if self.plan.command is not None:
            self._errlog = tempfile.TemporaryFile("w+", prefix="agentos-mcp-")
        self._task = asyncio.create_task(self._hold(), name=f"mcp-{self.plan.name}")
        try:
            await asyncio.wait_for(self._ready.wait(), self.plan.config.startup_timeout)
        except TimeoutError:
            await self._shutdown()
            raise McpUnavailable(
                f"{self.label} did not answer within {self.plan.config.startup_timeout:g} s "
                f"({self.plan.describe()})"
            ) from None
        if self._client is None:
            why = _one_line(self._error) if self._error else "it exited"
            tail = self._stderr_tail()
            await self._shutdown()
            raise McpUnavailable(
                f"{self.label} failed to start ({self.plan.describe()}): {why}"
                + (f"; its stderr: {tail}" if tail else "")
            )

    async def list_tools(self) -> list[Any]:
        """Every tool the server offers (all pages)."""
        if self._client is None:
            raise McpUnavailable(f"{self.label} is not running")
        out: list[Any] = []
        cursor: str | None = None
        try:
            async with asyncio.timeout(self.plan.config.startup_timeout):
                for _ in range(MAX_TOOL_PAGES):
                    page = await self._client.list_tools(cursor=cursor)
                    out.extend(page.tools)
                    cursor = page.next_cursor
                    if not cursor:
                        break
        except Exception as exc:
            raise McpUnavailable(
                f"{self.label} could not list its tools: {_one_line(exc)}"
            ) from None
        return out

    async def call(self, remote: str, arguments: dict[str, Any]) -> str:
        """Call a tool; ToolError for anything that went wrong (the model reads it)."""
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

        cfg = self.plan.config
        if self._client is None:
            if self.restarts >= MAX_RESTARTS:
                raise ToolError(
                    f"the MCP server {self.plan.name} stopped {self.restarts + 1} times; "
                    "its tools are unavailable for the rest of this stage"
                )
            self.restarts += 1
            try:
                await self.start()
            except McpUnavailable as exc:
                raise ToolError(f"{exc} (restarting it after it stopped)") from None
        try:
            async with asyncio.timeout(cfg.timeout + 5):
                result = await self._client.call_tool(
                    remote, arguments, read_timeout_seconds=cfg.timeout
                )
        except TimeoutError:
            raise ToolError(
                f"{remote} (MCP server {self.plan.name}) did not answer within {cfg.timeout:g} s"
            ) from None
        except MCPError as exc:
            code = getattr(getattr(exc, "error", None), "code", None)
            if code == CONNECTION_CLOSED or self._client is None:
                tail = self._stderr_tail()
                await self._shutdown()
                raise ToolError(
                    f"the MCP server {self.plan.name} stopped during the call to {remote}"
                    + (f" (its stderr: {tail})" if tail else "")
                    + "; it is started again for the next call"
                ) from None
            if code == REQUEST_TIMEOUT:
                raise ToolError(
                    f"{remote} (MCP server {self.plan.name}) did not answer within {cfg.timeout:g} s"
                ) from None
            raise ToolError(f"{remote} (MCP server {self.plan.name}): {_one_line(exc)}") from None
        text = render_result(result)
        if getattr(result, "is_error", False):
            raise ToolError(cap_text(text or f"{remote} reported an error", cfg.output_cap))
        return cap_text(text, cfg.output_cap)

    async def _shutdown(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            self._stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), 10)
            except (TimeoutError, Exception):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self._client = None
        if self._errlog is not None:
            with contextlib.suppress(Exception):
                self._errlog.close()
            self._errlog = None

    async def close(self) -> None:
        """Stop the server (stdin closed, then its process group killed if it lingers)."""
        await self._shutdown()


def render_result(result: Any) -> str:
    """A CallToolResult as the text a model reads."""
    parts: list[str] = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(str(block.text))
        elif kind in ("image", "audio"):
            size = len(getattr(block, "data", "") or "") * 3 // 4
            parts.append(f"[{kind} {getattr(block, 'mime_type', '')}, about {size} bytes]")
        elif kind == "resource":
            res = block.resource
            text = getattr(res, "text", None)
            parts.append(str(text) if text is not None else f"[resource {res.uri}]")
        elif kind == "resource_link":
            parts.append(
                f"[resource link {getattr(block, 'uri', '')} {getattr(block, 'name', '')}]"
            )
        else:
            parts.append(json.dumps(block.model_dump(mode="json", exclude_none=True)))
    structured = getattr(result, "structured_content", None)
    if not parts and structured is not None:
        parts.append(json.dumps(structured, default=str))
    return "\n".join(parts)


# ---------------------------------------------------------------- tools --


class McpArguments(BaseModel):
    """Whatever the model sent; the server's JSON schema checks it (locally, then remotely)."""

    model_config = ConfigDict(extra="allow")


def function_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An MCP input schema trimmed for function calling (no $schema, no top-level title)."""
    out = {k: v for k, v in (schema or {}).items() if k not in ("$schema", "title")}
    out.setdefault("type", "object")
    out.setdefault("properties", {})
    return out


@dataclass(frozen=True)
class McpTool(Tool):
    """A tool of an MCP server, called through its connection."""

    server: str = ""
    remote_name: str = ""
    input_schema: dict[str, Any] = field(default_factory=dict)

    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": function_schema(self.input_schema),
            },
        }


def _validator(schema: dict[str, Any]) -> Any:
    import jsonschema

    try:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        return cls(schema)
    except Exception:
        return None  # a schema the validator cannot read: the server checks the call


def make_tools(conn: McpConnection, listed: list[Any]) -> list[McpTool]:
    """Tools named mcp__<server>__<tool> for what a server listed (its allow-list applied)."""
    server = conn.plan.name
    wanted = conn.plan.config.tools
    by_remote = {t.name: t for t in listed}
    if wanted is not None:
        unknown = [n for n in wanted if n not in by_remote]
        if unknown:
            raise McpUnavailable(
                f"{conn.label} has no tool {unknown[0]!r} (it has: {', '.join(sorted(by_remote))})"
            )
        listed = [by_remote[n] for n in wanted]
    out: list[McpTool] = []
    seen: dict[str, str] = {}
    for t in listed:
        name = tool_name(server, t.name)
        if name in seen:
            raise McpUnavailable(
                f"{conn.label}: duplicate tool name {name} (its tools {seen[name]!r} and "
                f"{t.name!r}); list one of them under tools:"
            )
        if len(name) > TOOL_NAME_MAX:
            raise McpUnavailable(
                f"{conn.label}: tool {t.name!r} makes the name {name} longer than "
                f"{TOOL_NAME_MAX} characters; shorten the server's name"
            )
        seen[name] = t.name
        schema = dict(getattr(t, "input_schema", None) or {})
        out.append(_tool(conn, name, t.name, str(t.description or t.name), schema))
    return out


def _tool(
    conn: McpConnection, name: str, remote: str, desc: str, schema: dict[str, Any]
) -> McpTool:
    validator = _validator(schema)

    async def fn(ctx: ToolContext, args: Any) -> str:
        arguments = args.model_dump() if isinstance(args, BaseModel) else dict(args)
        if validator is not None:
            problems = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
            if problems:
                lines = [f"bad arguments for {name}:"]
                for p in problems[:10]:
                    where = ".".join(str(x) for x in p.path) or "(arguments)"
                    lines.append(f"  {where}: {p.message}")
                raise ToolError("\n".join(lines))
        return await conn.call(remote, arguments)

    return McpTool(
        name=name,
        description=f"{desc} (MCP server {conn.plan.name})",
        input_model=McpArguments,
        fn=fn,
        timeout=None,  # the connection bounds each call by the server's timeout
        server=conn.plan.name,
        remote_name=remote,
        input_schema=schema,
    )


class McpToolset:
    """The servers of one stage: started together, their tools listed, closed together."""

    def __init__(self, plans: Iterable[ServerPlan], *, role: str = "") -> None:
        self.connections = [McpConnection(p, role=role) for p in plans]
        self.tools: list[McpTool] = []

    async def __aenter__(self) -> McpToolset:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Start every server; McpUnavailable (the first failure) after closing the rest."""
        results = await asyncio.gather(
            *(self._start(c) for c in self.connections), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.close()
            first = failures[0]
            if isinstance(first, McpUnavailable):
                raise first
            raise McpUnavailable(_one_line(first))
        self.tools = [t for r in results if isinstance(r, list) for t in r]

    async def _start(self, conn: McpConnection) -> list[McpTool]:
        await conn.start()
        return make_tools(conn, await conn.list_tools())

    async def close(self) -> None:
        """Stop every server."""
        await asyncio.gather(*(c.close() for c in self.connections), return_exceptions=True)


@dataclass
class ServerReport:
    """What `agentos tool list` shows of one server."""

    name: str
    transport: str
    ok: bool
    tools: list[McpTool] = field(default_factory=list)
    error: str = ""


async def discover(plans: Iterable[ServerPlan], *, role: str = "") -> list[ServerReport]:
    """Start each server once and list its tools (or the error), concurrently."""

    async def one(plan: ServerPlan) -> ServerReport:
        conn = McpConnection(plan, role=role)
        try:
            await conn.start()
            tools = make_tools(conn, await conn.list_tools())
            return ServerReport(plan.name, plan.transport, True, tools)
        except McpUnavailable as exc:
            return ServerReport(plan.name, plan.transport, False, error=str(exc))
        finally:
            await conn.close()

    return list(await asyncio.gather(*(one(p) for p in plans)))


def command_root(command: str) -> Path | None:
    """The install tree of a stdio server's program (bound read-only into a sandbox that
    would hide it, as executors need); None when it is not found."""
    found = shutil.which(command) if os.sep not in command else command
    if not found:
        return None
    real = Path(os.path.realpath(found))
    for parent in real.parents:
        if parent.name in ("node_modules", "bin") and parent.parent != parent:
            return parent.parent
    return real.parent


def server_readable(plan: ServerPlan, *, never_under: Sequence[Path] = ()) -> list[Path]:
    """What a stdio server started inside an executor's sandbox must see there, bound
    read-only: its program's install tree, and each file its arguments name by an
    absolute path (a script: `python /path/server.py`), which the sandbox would otherwise
    hide under its private /tmp or a hidden home. A directory an argument names is not
    bound (it could lie above a hidden path and bring it back), nor is anything under
    never_under (AGENTOS_HOME)."""
    if plan.command is None:
        return []
    out: list[Path] = []
    root = command_root(plan.command)
    if root is not None:
        out.append(root)
    for arg in plan.args:
        if not os.path.isabs(arg) or not os.path.isfile(arg):
            continue
        real = Path(os.path.realpath(arg))
        if any(real.is_relative_to(Path(os.path.realpath(n))) for n in never_under):
            continue
        out.append(real)
    return out


__all__ = [
    "PREFIX",
    "McpConnection",
    "McpServerConfig",
    "McpTool",
    "McpToolset",
    "McpUnavailable",
    "ServerPlan",
    "check_server_name",
    "discover",
    "plan_server",
    "resolve_plans",
    "secret_names",
    "server_readable",
    "tool_name",
]
