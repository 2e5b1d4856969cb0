"""OpenCode: `opencode run --format json PROMPT`.

Headless facts (opencode 1.18, checked against the real CLI): JSON lines, each with
`type`, `sessionID` and a `part`: `step_start`, `text` (part.text), `tool_use`
(part.tool, part.callID, part.state: status, input, output), `step_finish` (part.tokens:
input, output, cache.read; part.cost), `error`. There is no closing event: the last
text is the final message. A base URL becomes an OpenAI-compatible provider in the
inline config (OPENCODE_CONFIG_CONTENT), which also allows edits and shell commands.
`--session ID` continues a session; sessions live in HOME/.local/share/opencode/opencode.db.
At start opencode installs its config directory's npm dependencies (a registry fetch).
The role's MCP servers go into the same inline config (`mcp`: local commands with their
environment, remote URLs with their headers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from agentos.agents.executors.base import Adapter, Event, Plan, loads

PROVIDER = "agentos"


class OpenCode(Adapter):
    """sst's OpenCode CLI."""

    name: ClassVar[str] = "opencode"
    binary: ClassVar[str] = "opencode"
    needs: ClassVar[str] = (
        "a provider key (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...); OPENAI_BASE_URL for an "
        "OpenAI-compatible server; executor_options.model as provider/model"
    )
    provider_env: ClassVar[tuple[str, ...]] = (
        "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "GEMINI_API_KEY",
        "OPENROUTER_API_KEY",
    )  # fmt: skip
    resumable: ClassVar[bool] = True

    def _model(self, plan: Plan) -> str | None:
        model = plan.options.model
        if plan.environ.get("OPENAI_BASE_URL"):
            return f"{PROVIDER}/{(model or 'default').split('/')[-1]}"
        return model

    def argv(self, plan: Plan) -> list[str]:
        out = [plan.binary, "run", "--format", "json"]
        model = self._model(plan)
        if model:
            out += ["-m", model]
        if plan.resume and plan.session_id:
            out += ["--session", plan.session_id]
        return [*out, *plan.options.args, plan.prompt]

    def env(self, plan: Plan) -> dict[str, str]:
        env = super().env(plan)
        config: dict[str, Any] = {
            "autoupdate": False,
            "share": "disabled",
            "permission": {"edit": "allow", "bash": "allow", "webfetch": "allow"},
        }
        base_url = plan.environ.get("OPENAI_BASE_URL")
        model = self._model(plan)
        if base_url and model:
            name = model.split("/", 1)[1]
            config["provider"] = {
                PROVIDER: {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "AgentOS",
                    "options": {"baseURL": base_url, "apiKey": "{env:OPENAI_API_KEY}"},
                    "models": {name: {"name": name}},
                }
            }
            config["model"] = model
        if plan.mcp_servers:
            config["mcp"] = {s.name: _mcp_entry(s) for s in plan.mcp_servers}
        env["OPENCODE_CONFIG_CONTENT"] = json.dumps(config)
        env["OPENCODE_DISABLE_AUTOUPDATE"] = "1"
        return env

    def has_session(self, home: Path, session_id: str) -> bool:
        data = home / ".local" / "share" / "opencode"
        needle = session_id.encode()
        for f in (data / "opencode.db", data / "opencode.db-wal"):
            try:
                if needle in f.read_bytes():
                    return True
            except OSError:
                continue
        return False

    def parse(self, line: str) -> list[Event]:
        ev = loads(line)
        if ev is None:
            return []
        out: list[Event] = []
        sid = ev.get("sessionID")
        if sid and not self.state.get("session"):
            self.state["session"] = sid
            out.append(Event("session", session_id=sid))
        part = ev.get("part") or {}
        pid = part.get("id")
        kind = ev.get("type")
        if kind == "text" and part.get("text"):
            self.state["last_text"] = part["text"]
            out.append(Event("text", text=part["text"], key=pid))
        elif kind == "tool_use":
            state = part.get("state") or {}
            call = str(part.get("callID") or pid)
            out.append(Event("tool_call", tool_name=part.get("tool"), tool_call_id=call,
                             arguments=state.get("input"), key=f"{pid}:call"))  # fmt: skip
            if state.get("status") in ("completed", "error"):
                out.append(
                    Event("tool_result", tool_name=part.get("tool"), tool_call_id=call,
                          text=str(state.get("output") or state.get("error") or ""),
                          ok=state.get("status") == "completed", key=f"{pid}:result")
                )  # fmt: skip
        elif kind == "step_finish":
            tokens = part.get("tokens") or {}
            cache = tokens.get("cache") or {}
            out.append(
                Event("usage", prompt_tokens=int(tokens.get("input") or 0)
                      + int(cache.get("read") or 0),
                      completion_tokens=int(tokens.get("output") or 0),
                      cost_usd=float(part["cost"]) if part.get("cost") else None)
            )  # fmt: skip
        elif kind == "error":
            err = ev.get("error") or {}
            msg = err.get("data", {}).get("message") if isinstance(err, dict) else None
            self.state["error"] = str(msg or err or "error")
        return out

    def finish(self, exit_code: int | None) -> list[Event]:
        error = self.state.get("error")
        text = error or self.state.get("last_text") or ""
        return [Event("result", text=str(text), is_error=bool(error) or exit_code != 0)]


def _mcp_entry(s: Any) -> dict[str, Any]:
    """OpenCode's `mcp` entry for one server (tools/mcp.ServerPlan)."""
    timeout_ms = int(s.config.timeout * 1000)
    if s.command is not None:
        return {"type": "local", "command": [s.command, *s.args], "environment": dict(s.env),
                "enabled": True, "timeout": timeout_ms}  # fmt: skip
    return {"type": "remote", "url": s.url, "headers": dict(s.headers), "enabled": True,
            "timeout": timeout_ms}  # fmt: skip
