"""What a tool is: a pydantic input model, a function-calling schema, one async function.

`Tool.call` is the only way the agent loop runs a tool. It never raises for anything the
model did: bad JSON, a wrong type, a missing field, a path outside the worktree, a
timeout or a bug in the tool all come back as `ToolResult(ok=False, output="error: ...")`,
one readable paragraph the model can act on. Only cancellation (the task was cancelled
or the process is stopping) propagates.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentos.kernel.db import Kernel
from agentos.kernel.errors import KernelError
from pydantic import BaseModel, ConfigDict, ValidationError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0


class ToolError(Exception):
    """A failure to report to the model as is (bad path, no match, nothing to commit...)."""


class ToolInput(BaseModel):
    """Base of every tool's input model: unknown arguments are an error the model sees."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class ToolContext:
    """Who is calling and where: one per agent and task, built by the agent runtime."""

    kernel: Kernel | None
    agent: str
    role: str
    task_id: int | None
    worktree: Path
    env: dict[str, str] | None = None
    shell_timeout: float = 120.0
    output_cap: int = 16_000
    # What the role allows beyond the default sandbox (docs/security.md):
    # commands get a network namespace of their own unless `network` is set;
    network: bool = False
    # the browser (and any HTTP tool) refuses loopback, private and link-local addresses
    # unless `allow_private_network` is set or the "host:port" is in `private_hosts`;
    allow_private_network: bool = False
    private_hosts: tuple[str, ...] = ()
    # and sandboxed commands see none of these (beyond AGENTOS_HOME, the workspace...).
    hidden_paths: tuple[Path, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def need_kernel(self) -> Kernel:
        """The kernel, or a ToolError when this context has no database."""
        if self.kernel is None:
            raise ToolError("this tool needs the database, and none is configured here")
        return self.kernel


@dataclass(frozen=True)
class ToolResult:
    """What the model reads back: ok, and the text of the result or of the error."""

    ok: bool
    output: str


ToolFn = Callable[[ToolContext, Any], Awaitable[str]]


@dataclass(frozen=True)
class Tool:
    """One tool. `timeout` bounds a call (None: the tool bounds itself, as the shell does)."""

    name: str
    description: str
    input_model: type[BaseModel]
    fn: ToolFn
    timeout: float | None = DEFAULT_TIMEOUT
    read_only: bool = False

    def schema(self) -> dict[str, Any]:
        """The OpenAI tools entry: {"type": "function", "function": {name, description, parameters}}."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters_schema(self.input_model),
            },
        }

    async def call(self, ctx: ToolContext, raw_args: str | dict[str, Any] | None) -> ToolResult:
        """Validate the arguments and run the tool; every failure becomes a readable result."""
        try:
            args = self.parse(raw_args)
        except ToolError as exc:
            return ToolResult(False, f"error: {exc}")
        try:
            if self.timeout is None:
                out = await self.fn(ctx, args)
            else:
                out = await asyncio.wait_for(self.fn(ctx, args), self.timeout)
        except ToolError as exc:
            return ToolResult(False, cap_text(f"error: {exc}", ctx.output_cap))
        except KernelError as exc:
            return ToolResult(False, cap_text(f"error: {exc}", ctx.output_cap))
        except TimeoutError:
            return ToolResult(False, f"error: {self.name} timed out after {self.timeout:g} s")
        except Exception as exc:
            log.exception(
                "tool %s failed", self.name, extra={"action": "tool.crash", "tool": self.name}
            )
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return ToolResult(
                False, f"error: {self.name} failed unexpectedly: {type(exc).__name__} {detail}"
            )
        return ToolResult(True, cap_text(str(out), ctx.output_cap))

    def parse(self, raw_args: str | dict[str, Any] | None) -> BaseModel:
        """The validated input model, or ToolError with every problem on one line each."""
        return parse_arguments(self.name, self.input_model, raw_args)


def parse_arguments(
    name: str, input_model: type[BaseModel], raw_args: str | dict[str, Any] | None
) -> BaseModel:
    """A tool call's arguments (JSON text or a dict) validated against the tool's input
    model; ToolError names every problem, one per line."""
    if raw_args is None or (isinstance(raw_args, str) and not raw_args.strip()):
        raw_args = {}
    if isinstance(raw_args, str):
        try:
            raw_args = json.loads(raw_args)
        except json.JSONDecodeError as exc:
            raise ToolError(
                f"the arguments of {name} are not valid JSON ({exc.msg} at "
                f"position {exc.pos}); send a JSON object"
            ) from exc
    if not isinstance(raw_args, dict):
        raise ToolError(
            f"the arguments of {name} must be a JSON object, not {type(raw_args).__name__}"
        )
    try:
        return input_model.model_validate(raw_args)
    except ValidationError as exc:
        raise ToolError(describe_validation(name, exc)) from exc


def describe_validation(tool: str, exc: ValidationError) -> str:
    """Every problem of a ValidationError, one per line, named by field."""
    lines = [f"bad arguments for {tool}:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown argument"
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def parameters_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema trimmed for function calling: no titles, always `required`."""
    schema = model.model_json_schema()
    if "$defs" in schema:
        raise TypeError(f"{model.__name__}: tool inputs must be flat (no nested models)")
    props = {name: _clean(prop) for name, prop in schema.get("properties", {}).items()}
    return {
        "type": "object",
        "properties": props,
        "required": list(schema.get("required", [])),
        "additionalProperties": False,
    }


def _clean(prop: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in prop.items() if k != "title"}
    # Optional[X] comes out as anyOf [X, null]; most providers read a plain type better.
    any_of = out.get("anyOf")
    if isinstance(any_of, list):
        kept = [s for s in any_of if s.get("type") != "null"]
        if len(kept) == 1 and len(kept) < len(any_of):
            out.pop("anyOf")
            out = {**{k: v for k, v in kept[0].items() if k != "title"}, **out}
    return out


def cap_text(text: str, cap: int) -> str:
    """At most `cap` characters: the head and the tail, with a note of what was cut."""
    if cap <= 0 or len(text) <= cap:
        return text
    head = cap * 2 // 3
    tail = cap - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut} characters cut ...]\n{text[len(text) - tail :]}"
