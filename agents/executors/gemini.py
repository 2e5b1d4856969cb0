"""Gemini CLI: `gemini -p PROMPT --output-format stream-json --yolo`.

Headless facts (gemini-cli 0.61, checked against the real CLI): JSON lines `init`
(session_id, model), `message` (role user/assistant, content; assistant text comes in
deltas), `tool_use` (tool_name, tool_id, parameters), `tool_result` (tool_id, status,
output), `error`, and a closing `result` (status, stats with input/output tokens; no
cost). The API key needs the auth type chosen in HOME/.gemini/settings.json
(`gemini-api-key`), else it says "Invalid auth method selected"; a folder it does not
trust turns --yolo back into "default" approvals unless --skip-trust. The base URL is
GOOGLE_GEMINI_BASE_URL. `--session-id UUID` names a session; `--resume latest` takes
the newest session of the project, which in the per-task HOME is the task's.

MCP: the role's servers go into a settings file of the run's own (Gemini's "system"
settings, GEMINI_CLI_SYSTEM_SETTINGS_PATH = HOME/.agentos-mcp.json), as `mcpServers`
entries (command, args, env, cwd / httpUrl, headers; timeout, trust, includeTools for
`tools:`), with `--allowed-mcp-server-names` so only the role's servers run. The file
holds the servers' secrets: it is 0600 and removed when the stage ends (agents/toolbox.py,
as Claude Code's --mcp-config), like the other executors' MCP configuration. Gemini names MCP tools
`mcp_<server>_<tool>` (in its tool_use events too); the steps say `mcp__<server>__<tool>`
as AgentOS does.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any, ClassVar

from agentos.agents.executors.base import Adapter, Event, Plan, loads
from agentos.agents.executors.claude_code import MCP_CONFIG


class GeminiCli(Adapter):
    """Google's Gemini CLI."""

    name: ClassVar[str] = "gemini-cli"
    binary: ClassVar[str] = "gemini"
    needs: ClassVar[str] = (
        "GEMINI_API_KEY (or GOOGLE_API_KEY); GOOGLE_GEMINI_BASE_URL for a gateway"
    )
    provider_env: ClassVar[tuple[str, ...]] = (
        "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GEMINI_MODEL",
    )  # fmt: skip
    resumable: ClassVar[bool] = True
    chooses_session: ClassVar[bool] = True

    def argv(self, plan: Plan) -> list[str]:
        out = [plan.binary, "-p", plan.prompt, "--output-format", "stream-json", "--yolo",
               "--skip-trust"]  # fmt: skip
        if plan.options.model:
            out += ["-m", plan.options.model]
        if plan.session_id:
            out += ["--resume", "latest"] if plan.resume else ["--session-id", plan.session_id]
        if plan.mcp_servers:
            out += ["--allowed-mcp-server-names", ",".join(s.name for s in plan.mcp_servers)]
        return out + list(plan.options.args)

    def env(self, plan: Plan) -> dict[str, str]:
        env = super().env(plan)
        if plan.mcp_servers:
            env["GEMINI_CLI_SYSTEM_SETTINGS_PATH"] = str(plan.home / MCP_CONFIG)
        return env

    def prepare(self, plan: Plan) -> None:
        """The user settings (auth) once; the run's MCP servers (0600) when it has any."""
        self.state["mcp_prefixes"] = sorted(
            ((_valid_name(f"mcp_{s.name}_"), s.name) for s in plan.mcp_servers),
            key=lambda p: -len(p[0]),
        )
        path = plan.home / MCP_CONFIG
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        if plan.mcp_servers:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(mcp_settings(plan.mcp_servers), f)
        settings = plan.home / ".gemini" / "settings.json"
        if not settings.exists():
            settings.parent.mkdir(parents=True, exist_ok=True)
            auth = "gemini-api-key"
            settings.write_text(
                json.dumps(
                    {
                        "security": {"auth": {"selectedType": auth}},
                        "general": {"disableAutoUpdate": True},
                        "privacy": {"usageStatisticsEnabled": False},
                        "telemetry": {"enabled": False},
                    }
                )
            )

    def has_session(self, home: Path, session_id: str) -> bool:
        return any((home / ".gemini" / "tmp").glob(f"*/chats/session-*-{session_id[:8]}*.json*"))

    def parse(self, line: str) -> list[Event]:
        ev = loads(line)
        if ev is None:
            return []
        kind = ev.get("type")
        if kind == "init":
            return [Event("session", session_id=ev.get("session_id"), model=ev.get("model"))]
        if kind == "message" and ev.get("role") == "assistant":
            # deltas: gathered into one text step when the turn moves on
            self.state["text"] = self.state.get("text", "") + str(ev.get("content") or "")
            return []
        out = self._flush()
        if kind == "tool_use":
            name = self._tool_name(ev.get("tool_name"))
            self.state.setdefault("calls", {})[ev.get("tool_id")] = name
            out.append(Event("tool_call", tool_name=name,
                             tool_call_id=ev.get("tool_id"), arguments=ev.get("parameters")))  # fmt: skip
        elif kind == "tool_result":
            name = self.state.get("calls", {}).pop(ev.get("tool_id"), None)
            out.append(Event("tool_result", tool_name=name, tool_call_id=ev.get("tool_id"),
                             text=str(ev.get("output") or (ev.get("error") or {}).get("message", "")
                                      if isinstance(ev.get("error"), dict) else ev.get("output") or ""),
                             ok=ev.get("status") == "success"))  # fmt: skip
        elif kind == "error":
            self.state["error"] = str(ev.get("message") or "error")
        elif kind == "result":
            stats = ev.get("stats") or {}
            models = list((stats.get("models") or {}).keys())
            out.append(Event("usage", model=models[0] if models else None,
                             prompt_tokens=int(stats.get("input_tokens") or 0),
                             completion_tokens=int(stats.get("output_tokens") or 0),
                             cumulative=True))  # fmt: skip
            ok = ev.get("status") == "success"
            text = self.state.get("last_text") or ""
            if not ok:
                text = str((ev.get("error") or {}).get("message") or self.state.get("error") or
                           ev.get("status"))  # fmt: skip
            out.append(Event("result", text=text, is_error=not ok))
        return out

    def _tool_name(self, name: Any) -> str | None:
        """AgentOS's mcp__<server>__<tool> for Gemini's mcp_<server>_<tool>."""
        if not isinstance(name, str):
            return None
        for prefix, server in self.state.get("mcp_prefixes", []):
            if name.startswith(prefix) and len(name) > len(prefix):
                return f"mcp__{server}__{name[len(prefix) :]}"
        return name

    def _flush(self) -> list[Event]:
        text = self.state.pop("text", "")
        if not text.strip():
            return []
        self.state["last_text"] = text
        return [Event("text", text=text)]

    def finish(self, exit_code: int | None) -> list[Event]:
        return self._flush()


# a variable never set: Gemini's `${NAME:-default}` gives a `$` that it does not expand
NO_VAR = "AGENTOS_GEMINI_UNSET"


def _literal(value: str, twice: bool = False) -> str:
    """A settings string that Gemini turns back into `value`. It expands `$VAR` and
    `${VAR:-default}` when it loads the settings (no escape there: each `$` becomes
    `${NO_VAR:-$}`), and env and header values again when it starts the server
    (dotenv-expand: `\\$` is a `$`)."""
    if "$" not in value:
        return value
    if twice:
        value = value.replace("$", "\\$")
    return value.replace("$", "${" + NO_VAR + ":-$}")


def mcp_settings(servers: list[Any]) -> dict[str, Any]:
    """Gemini's `mcpServers` settings for the role's servers (tools/mcp.ServerPlan), with
    their secrets: written 0600 in the run's private HOME, removed when the stage ends."""
    out: dict[str, Any] = {}
    for s in servers:
        entry: dict[str, Any]
        if s.command is not None:
            entry = {"command": _literal(s.command), "args": [_literal(a) for a in s.args],
                     "env": {k: _literal(v, twice=True) for k, v in s.env.items()}}  # fmt: skip
            if s.cwd:
                entry["cwd"] = _literal(s.cwd)
        else:
            entry = {"httpUrl": _literal(s.url or ""),
                     "headers": {h: _literal(v, twice=True) for h, v in s.headers.items()}}  # fmt: skip
        # one timeout in Gemini, for connecting and for each call
        entry["timeout"] = int(max(s.config.timeout, s.config.startup_timeout) * 1000)
        entry["trust"] = True  # headless with --yolo: no one to confirm a call
        if s.config.tools is not None:
            entry["includeTools"] = list(s.config.tools)
        out[s.name] = entry
    return {"mcpServers": out}


def _valid_name(name: str) -> str:
    """Gemini's generateValidName for a tool name prefix (no truncation: a prefix)."""
    name = name if name.startswith("mcp_") else f"mcp_{name}"
    name = re.sub(r"[^a-zA-Z0-9_\-.:]", "_", name)
    return f"_{name}" if re.match(r"[^a-zA-Z_]", name) else name
