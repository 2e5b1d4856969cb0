"""OpenAI Codex CLI: `codex exec --json PROMPT`, `codex exec resume ID --json PROMPT`.

Headless facts (codex-cli 0.171, checked against the real CLI): the JSON lines are
`thread.started` (thread_id: the session), `turn.started`, `item.started` /
`item.completed` (items: agent_message, reasoning, command_execution with its command,
aggregated_output and exit_code, file_change, mcp_tool_call, web_search, todo_list,
error), `turn.completed` (usage: input_tokens, cached_input_tokens, output_tokens,
totals of the whole thread) and `turn.failed`. It reports no cost. OPENAI_BASE_URL is
not read by the CLI: a base URL becomes a model provider given with `-c`. Sessions
live in CODEX_HOME (default HOME/.codex)/sessions/**/rollout-*-<id>.jsonl. Codex's own
sandbox needs namespaces that AgentOS's sandbox already took, so it runs with
--dangerously-bypass-approvals-and-sandbox inside ours. The role's MCP servers are
`-c mcp_servers.<name>.*` overrides (command, args, url, timeouts) with no secret on the
command line: a secret env value reaches the server through Codex's own environment and
`env_vars` (forwarded by name), a secret header through `env_http_headers`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

from agentos.agents.executors.base import Adapter, Event, Plan, loads

PROVIDER = "agentos"


class Codex(Adapter):
    """OpenAI's Codex CLI."""

    name: ClassVar[str] = "codex"
    binary: ClassVar[str] = "codex"
    needs: ClassVar[str] = "OPENAI_API_KEY (or CODEX_API_KEY); OPENAI_BASE_URL for another server"
    provider_env: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY", "CODEX_API_KEY", "OPENAI_BASE_URL")
    resumable: ClassVar[bool] = True
    session_totals: ClassVar[bool] = True

    def argv(self, plan: Plan) -> list[str]:
        o = plan.options
        out = [plan.binary, "exec"]
        if plan.resume and plan.session_id:
            out.append("resume")
        out += ["--json", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox"]
        if o.model:
            out += ["-m", o.model]
        base_url = plan.environ.get("OPENAI_BASE_URL")
        if base_url:
            key = "CODEX_API_KEY" if plan.environ.get("CODEX_API_KEY") else "OPENAI_API_KEY"
            p = f"model_providers.{PROVIDER}"
            out += ["-c", f"model_provider={PROVIDER}", "-c", f'{p}.name="{PROVIDER}"',
                    "-c", f'{p}.base_url="{base_url}"', "-c", f'{p}.env_key="{key}"',
                    "-c", f'{p}.wire_api="responses"']  # fmt: skip
        for s in plan.mcp_servers:
            out += _mcp_overrides(s)
        self.mcp_env(plan)  # a clash of secret names is a ValueError here, before the run
        out += list(o.args)
        if plan.resume and plan.session_id:
            out.append(plan.session_id)
        return [*out, plan.prompt]

    def env(self, plan: Plan) -> dict[str, str]:
        return {**super().env(plan), **self.mcp_env(plan)}

    def mcp_env(self, plan: Plan) -> dict[str, str]:
        """The MCP servers' secrets, by the names Codex forwards them under."""
        out: dict[str, str] = {}
        for s in plan.mcp_servers:
            pairs = [(k, s.env[k]) for k in sorted(s.secret_env)]
            pairs += [(_header_var(s.name, h), s.headers[h]) for h in sorted(s.secret_headers)]
            for name, value in pairs:
                if out.get(name, value) != value:
                    raise ValueError(
                        f"two MCP servers need {name} with different values; Codex forwards "
                        "variables by name, so give one of them another name"
                    )
                out[name] = value
        return out

    def has_session(self, home: Path, session_id: str) -> bool:
        return any((home / ".codex" / "sessions").glob(f"**/rollout-*{session_id}.jsonl"))

    def parse(self, line: str) -> list[Event]:
        ev = loads(line)
        if ev is None:
            return []
        kind = ev.get("type")
        if kind == "thread.started":
            tid = ev.get("thread_id")
            return [Event("session", session_id=tid, key=f"thread:{tid}")]
        if kind == "item.completed":
            return self._item(ev.get("item") or {})
        if kind == "item.started":
            item = ev.get("item") or {}
            if item.get("type") == "command_execution":
                return [Event("tool_call", tool_name="command_execution",
                              tool_call_id=str(item.get("id")),
                              arguments={"command": item.get("command")})]  # fmt: skip
            return []
        if kind == "turn.completed":
            usage = ev.get("usage") or {}
            return [
                Event(
                    "usage",
                    prompt_tokens=int(usage.get("input_tokens") or 0),
                    completion_tokens=int(usage.get("output_tokens") or 0),
                    cumulative=True,
                ),
                Event("result", text=str(self.state.get("last_message") or "")),
            ]
        if kind == "turn.failed":
            err = (ev.get("error") or {}).get("message") or "the turn failed"
            return [Event("result", text=str(err), is_error=True)]
        return []

    def _item(self, item: dict[str, Any]) -> list[Event]:
        kind = item.get("type")
        iid = str(item.get("id"))
        if kind == "agent_message":
            self.state["last_message"] = item.get("text") or ""
            return [Event("text", text=str(item.get("text") or ""))]
        if kind == "command_execution":
            code = item.get("exit_code")
            return [Event("tool_result", tool_name="command_execution", tool_call_id=iid,
                          text=str(item.get("aggregated_output") or ""),
                          ok=code == 0)]  # fmt: skip
        if kind in ("file_change", "mcp_tool_call", "web_search"):
            args = {k: v for k, v in item.items() if k not in ("id", "type", "status")}
            return [
                Event("tool_call", tool_name=kind, tool_call_id=iid, arguments=args),
                Event("tool_result", tool_name=kind, tool_call_id=iid,
                      text=str(item.get("status") or "done"),
                      ok=item.get("status") != "failed"),
            ]  # fmt: skip
        return []


def _toml(value: Any) -> str:
    """A TOML value for a -c override (strings, lists of strings, tables of strings)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}={_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_toml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value))


def _header_var(server: str, header: str) -> str:
    return "MCP_" + re.sub(r"[^A-Z0-9]", "_", f"{server}_{header}".upper())


def _mcp_overrides(s: Any) -> list[str]:
    """`-c mcp_servers.<name>.<key>=<toml>` pairs for one server, no secret among them."""
    key = f"mcp_servers.{s.name}"
    items: list[tuple[str, Any]] = [
        ("startup_timeout_sec", int(s.config.startup_timeout)),
        ("tool_timeout_sec", int(s.config.timeout)),
    ]
    if s.command is not None:
        items += [("command", s.command), ("args", list(s.args))]
        plain = {k: v for k, v in s.env.items() if k not in s.secret_env}
        if plain:
            items.append(("env", plain))
        if s.secret_env:
            items.append(("env_vars", sorted(s.secret_env)))
    else:
        items.append(("url", s.url))
        plain = {k: v for k, v in s.headers.items() if k not in s.secret_headers}
        if plain:
            items.append(("http_headers", plain))
        if s.secret_headers:
            items.append(
                ("env_http_headers", {h: _header_var(s.name, h) for h in sorted(s.secret_headers)})
            )
    if s.config.tools is not None:
        items.append(("enabled_tools", list(s.config.tools)))
    out: list[str] = []
    for k, v in items:
        out += ["-c", f"{key}.{k}={_toml(v)}"]
    return out
