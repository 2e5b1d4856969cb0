"""The executor interface: one small adapter per coding-agent CLI.

An adapter knows one CLI: how to start it headless for a stage (`argv`, `env`), how to
read what it prints (`parse` one line at a time, `finish` at exit), whether it can resume
a session and where that session lives (`has_session`). Everything else (budgets, steps,
the process group, commit and review) is the runner's, the same for every CLI, like
Oban's swappable engines behind one behaviour.
"""

from __future__ import annotations

import abc
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from agentos.agents.config import ExecutorOptions

EventKind = str  # 'text' | 'tool_call' | 'tool_result' | 'usage' | 'session' | 'result'


@dataclass
class Event:
    """One thing the CLI reported."""

    kind: EventKind
    text: str = ""
    tool_name: str | None = None
    tool_call_id: str | None = None
    arguments: Any = None
    ok: bool = True
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    # usage totals for the whole run (so far) rather than one turn's
    cumulative: bool = False
    session_id: str | None = None
    is_error: bool = False
    # the CLI's own id of the event: a resumed run that replays it is not recorded twice
    key: str | None = None


@dataclass
class Plan:
    """What one run of a CLI is given."""

    binary: str
    prompt: str
    prompt_file: Path
    worktree: Path
    home: Path
    task_id: int
    options: ExecutorOptions
    session_id: str | None = None  # the session to start (when the CLI takes one) or resume
    resume: bool = False
    budget_usd: float | None = None  # the CLI's own spending cap, where it has one
    environ: dict[str, str] = field(default_factory=dict)  # the process env to pick from
    # the role's MCP servers with their secrets (tools/mcp.py ServerPlan), for the CLI's
    # own MCP configuration; filled by agents/toolbox.py
    mcp_servers: list[Any] = field(default_factory=list)


class Adapter(abc.ABC):
    """One CLI. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str]
    binary: ClassVar[str]
    # what the CLI needs from the environment, for `agentos executor list`
    needs: ClassVar[str]
    # the provider variables taken from our environment when set (and nothing else)
    provider_env: ClassVar[tuple[str, ...]] = ()
    resumable: ClassVar[bool] = False
    # files the CLI leaves in the worktree for itself: never committed
    ignore: ClassVar[tuple[str, ...]] = ()
    # the run has a session id before it starts (the CLI takes one on its command line)
    chooses_session: ClassVar[bool] = False
    # cumulative usage counts the whole session, across resumed runs (else: this run)
    session_totals: ClassVar[bool] = False

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    @abc.abstractmethod
    def argv(self, plan: Plan) -> list[str]:
        """The command line of one run."""

    def env(self, plan: Plan) -> dict[str, str]:
        """Variables the CLI gets beyond the sandbox's allow-list (HOME is set by the runner)."""
        picked = {k: plan.environ[k] for k in self.provider_env if plan.environ.get(k)}
        picked.update({k: plan.environ[k] for k in plan.options.pass_env if k in plan.environ})
        return picked

    def prepare(self, plan: Plan) -> None:  # noqa: B027 - most CLIs need no files
        """Write what the CLI reads at start (config files in its private home)."""

    def parse(self, line: str) -> list[Event]:
        """Events in one line of the CLI's standard output."""
        return []

    def finish(self, exit_code: int | None) -> list[Event]:
        """Events known only when the CLI has exited (plain-text CLIs: the final message)."""
        return []

    def has_session(self, home: Path, session_id: str) -> bool:
        """Whether the session can be resumed from this private home."""
        return False

    def find_binary(self, configured: str | None) -> str | None:
        """The executable: the configured path or name, else the default name on PATH."""
        name = configured or self.binary
        if os.sep in name:
            return name if os.access(name, os.X_OK) else None
        return shutil.which(name)

    def version_argv(self, binary: str) -> list[str]:
        """How to ask the CLI its version."""
        return [binary, "--version"]


def loads(line: str) -> dict[str, Any] | None:
    """A JSON object from one line, or None (CLIs print banners and warnings too)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def text_of(content: Any) -> str:
    """Plain text of a message content (a string or a list of typed blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                parts.append(str(block.get("text") or block.get("content") or ""))
            else:
                parts.append(str(block))
        return "\n".join(p for p in parts if p)
    return "" if content is None else json.dumps(content)


class PlainTextAdapter(Adapter):
    """A CLI that prints plain text: the output's tail is its final message."""

    tail_chars: ClassVar[int] = 4000

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def parse(self, line: str) -> list[Event]:
        if line.strip():
            self.lines.append(line.rstrip())
            # keep memory bounded on a chatty CLI
            if len(self.lines) > 2000:
                del self.lines[:1000]
        return []

    def finish(self, exit_code: int | None) -> list[Event]:
        out = "\n".join(self.lines)[-self.tail_chars :].strip()
        events = [Event("text", text=out)] if out else []
        final = self.final_message(out)
        events.append(
            Event("result", text=final or "(no output)", is_error=exit_code not in (0, None))
        )
        return events

    def final_message(self, output: str) -> str:
        """The summary for the reviewer, from the output's tail."""
        return output[-2000:]
