"""Every executor by name, and how to find its program."""

from __future__ import annotations

from agentos.agents.config import ExecutorOptions
from agentos.agents.executors.aider import Aider
from agentos.agents.executors.base import Adapter
from agentos.agents.executors.claude_code import ClaudeCode
from agentos.agents.executors.codex import Codex
from agentos.agents.executors.command import Command
from agentos.agents.executors.gemini import GeminiCli
from agentos.agents.executors.opencode import OpenCode

ADAPTERS: dict[str, type[Adapter]] = {
    a.name: a for a in (ClaudeCode, Codex, OpenCode, GeminiCli, Aider, Command)
}


def get_adapter(name: str) -> Adapter:
    """A fresh adapter (it keeps per-run parsing state) for an executor name."""
    try:
        return ADAPTERS[name]()
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise ValueError(f"unknown executor {name!r} (known: {known})") from None


def resolve_binary(adapter: Adapter, options: ExecutorOptions) -> str | None:
    """The executable a run would start, or None when it cannot be found."""
    if adapter.name == "command":
        first = options.binary or (options.command[0] if options.command else None)
        return Adapter.find_binary(adapter, first) if first else None
    return adapter.find_binary(options.binary)
