"""Every tool by name. The names are stable API: role configurations list them."""

from __future__ import annotations

from typing import Any

from agentos.tools import browser, files, git, kernel_tools, shell
from agentos.tools.base import Tool


def _index(*groups: list[Tool]) -> dict[str, Tool]:
    out: dict[str, Tool] = {}
    for group in groups:
        for tool in group:
            if tool.name in out:
                raise RuntimeError(f"two tools are named {tool.name!r}")
            out[tool.name] = tool
    return out


ALL_TOOLS: dict[str, Tool] = _index(
    files.TOOLS, shell.TOOLS, git.TOOLS, browser.TOOLS, kernel_tools.TOOLS
)


def get_tools(names: list[str]) -> list[Tool]:
    """The named tools, in the given order; ValueError names unknown ones and the known ones."""
    unknown = [n for n in names if n not in ALL_TOOLS]
    if unknown:
        raise ValueError(
            f"unknown tool{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(sorted(ALL_TOOLS))})"
        )
    return [ALL_TOOLS[n] for n in dict.fromkeys(names)]


def schemas(tools: list[Tool]) -> list[dict[str, Any]]:
    """The OpenAI `tools` list for these tools."""
    return [t.schema() for t in tools]
