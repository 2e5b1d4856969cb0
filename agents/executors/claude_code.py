"""Claude Code: `claude -p PROMPT --output-format stream-json --verbose`.

Headless facts (Claude Code 2.1, checked against the real CLI): the stream is JSON
lines: `system/init` (session_id, tools, model), `assistant` (one per content block,
with the message id and its usage), `user` (tool results), and a final `result`
(`result` text, `total_cost_usd`, totals in `usage`, `is_error` and a `subtype` such
as `error_max_turns`). `--permission-mode bypassPermissions` is refused as root
unless IS_SANDBOX=1. `--session-id UUID` names the session before it starts, and
`--resume UUID` continues it (sessions live in HOME/.claude/projects/). The CLI caps
its own spending with `--max-budget-usd`. The role's MCP servers are given with
`--mcp-config FILE --strict-mcp-config` (only those): FILE is written 0600 in the private
HOME for the run (it holds the servers' secrets) and removed when the stage ends
(agents/toolbox.py); Claude Code names their tools mcp__<server>__<tool>, as AgentOS does.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from agentos.agents.executors.base import Adapter, Event, Plan, loads, text_of


class ClaudeCode(Adapter):
    """Anthropic's Claude Code CLI."""

    name: ClassVar[str] = "claude-code"
    binary: ClassVar[str] = "claude"
    needs: ClassVar[str] = (
        "ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN); ANTHROPIC_BASE_URL for a gateway"
    )
    provider_env: ClassVar[tuple[str, ...]] = (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_MODEL",
        "ANTHROPIC_SMALL_FAST_MODEL",
        "ANTHROPIC_CUSTOM_HEADERS",
    )
    resumable: ClassVar[bool] = True
    chooses_session: ClassVar[bool] = True

    def prepare(self, plan: Plan) -> None:
        """Write the per-run MCP configuration (0600) when the role has servers."""
        path = plan.home / MCP_CONFIG
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        if not plan.mcp_servers:
            return
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(mcp_config(plan.mcp_servers), f)

    def argv(self, plan: Plan) -> list[str]:
        o = plan.options
        out = [plan.binary, "-p", plan.prompt, "--output-format", "stream-json", "--verbose",
               "--permission-mode", "bypassPermissions"]  # fmt: skip
        if plan.session_id:
            out += ["--resume", plan.session_id] if plan.resume else [
                "--session-id", plan.session_id]  # fmt: skip
        if o.model:
            out += ["--model", o.model]
        if o.max_turns:
            out += ["--max-turns", str(o.max_turns)]
        if plan.budget_usd is not None:
            out += ["--max-budget-usd", f"{plan.budget_usd:.4f}"]
        if plan.mcp_servers:
            out += ["--mcp-config", str(plan.home / MCP_CONFIG), "--strict-mcp-config"]
        return out + list(o.args)

    def env(self, plan: Plan) -> dict[str, str]:
        env = super().env(plan)
        env.update(
            {
                # bypassPermissions is refused as root outside a sandbox; we are one
                "IS_SANDBOX": "1",
                "DISABLE_TELEMETRY": "1",
                "DISABLE_AUTOUPDATER": "1",
                "DISABLE_ERROR_REPORTING": "1",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            }
        )
        if plan.mcp_servers:
            # headless Claude Code 2.1 connects MCP servers in the background and may send
            # its first request before their tools are listed: make it wait, within the
            # servers' own startup and call timeouts
            env["MCP_CONNECTION_NONBLOCKING"] = "false"
            cfgs = [s.config for s in plan.mcp_servers]
            env["MCP_TIMEOUT"] = str(int(max(c.startup_timeout for c in cfgs) * 1000))
            env["MCP_TOOL_TIMEOUT"] = str(int(max(c.timeout for c in cfgs) * 1000))
        return env

    def has_session(self, home: Path, session_id: str) -> bool:
        return any((home / ".claude" / "projects").glob(f"*/{session_id}.jsonl"))

    def parse(self, line: str) -> list[Event]:
        ev = loads(line)
        if ev is None:
            return []
        kind = ev.get("type")
        key = ev.get("uuid")
        if kind == "system" and ev.get("subtype") == "init":
            return [Event("session", session_id=ev.get("session_id"), model=ev.get("model"),
                          key=key)]  # fmt: skip
        if kind == "assistant":
            return self._assistant(ev.get("message") or {}, key)
        if kind == "user":
            out = []
            content = (ev.get("message") or {}).get("content")
            for i, block in enumerate(content if isinstance(content, list) else []):
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    out.append(
                        Event(
                            "tool_result",
                            tool_call_id=block.get("tool_use_id"),
                            text=text_of(block.get("content")),
                            ok=not block.get("is_error"),
                            key=f"{key}:{i}" if key else None,
                        )
                    )
            return out
        if kind == "result":
            usage = ev.get("usage") or {}
            models = list((ev.get("modelUsage") or {}).keys())
            return [
                Event(
                    "usage",
                    model=models[0] if models else None,
                    prompt_tokens=_input_tokens(usage),
                    completion_tokens=int(usage.get("output_tokens") or 0),
                    cost_usd=float(ev.get("total_cost_usd") or 0.0),
                    cumulative=True,
                    key=f"{key}:usage" if key else None,
                ),
                Event(
                    "result",
                    text=str(ev.get("result") or ""),
                    is_error=bool(ev.get("is_error")) or ev.get("subtype") != "success",
                    session_id=ev.get("session_id"),
                    arguments={"subtype": ev.get("subtype"), "num_turns": ev.get("num_turns")},
                    key=key,
                ),
            ]
        return []

    def _assistant(self, msg: dict[str, Any], key: str | None) -> list[Event]:
        out: list[Event] = []
        seen: set[str] = self.state.setdefault("messages", set())
        mid = msg.get("id")
        if mid and mid not in seen:
            # every content block of a message repeats the message's usage: count it once
            seen.add(mid)
            usage = msg.get("usage") or {}
            out.append(
                Event(
                    "usage",
                    model=msg.get("model"),
                    prompt_tokens=_input_tokens(usage),
                    completion_tokens=int(usage.get("output_tokens") or 0),
                    key=f"{mid}:usage",
                )
            )
        content = msg.get("content")
        for i, block in enumerate(content if isinstance(content, list) else []):
            if not isinstance(block, dict):
                continue
            bkey = f"{key}:{i}" if key else None
            if block.get("type") == "text" and block.get("text"):
                out.append(Event("text", text=block["text"], model=msg.get("model"), key=bkey))
            elif block.get("type") == "tool_use":
                out.append(
                    Event(
                        "tool_call",
                        tool_name=block.get("name"),
                        tool_call_id=block.get("id"),
                        arguments=block.get("input"),
                        key=bkey,
                    )
                )
        return out


MCP_CONFIG = ".agentos-mcp.json"  # in the run's private HOME; removed after the stage


def mcp_config(servers: list[Any]) -> dict[str, Any]:
    """Claude Code's --mcp-config document for the role's servers (tools/mcp.ServerPlan)."""
    out: dict[str, Any] = {}
    for s in servers:
        if s.command is not None:
            entry: dict[str, Any] = {"type": "stdio", "command": s.command, "args": list(s.args),
                                     "env": dict(s.env)}  # fmt: skip
        else:
            entry = {"type": "http", "url": s.url, "headers": dict(s.headers)}
        out[s.name] = entry
    return {"mcpServers": out}


def _input_tokens(usage: dict[str, Any]) -> int:
    return sum(
        int(usage.get(k) or 0)
        for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    )
