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
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from agentos.agents.executors.base import Adapter, Event, Plan, loads


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
        return out + list(plan.options.args)

    def prepare(self, plan: Plan) -> None:
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
            out.append(Event("tool_call", tool_name=ev.get("tool_name"),
                             tool_call_id=ev.get("tool_id"), arguments=ev.get("parameters")))  # fmt: skip
        elif kind == "tool_result":
            out.append(Event("tool_result", tool_call_id=ev.get("tool_id"),
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

    def _flush(self) -> list[Event]:
        text = self.state.pop("text", "")
        if not text.strip():
            return []
        self.state["last_text"] = text
        return [Event("text", text=text)]

    def finish(self, exit_code: int | None) -> list[Event]:
        return self._flush()
