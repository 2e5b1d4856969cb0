"""How a transcript step reads on screen: a header line, then its text, cut to fit."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from agentos.tui import fmt, model
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.text import Text

KIND_STYLE = {
    "system": "dim",
    "user": "bold cyan",
    "llm": "bold green",
    "tool_call": "bold yellow",
    "tool_result": "yellow",
    "note": "magenta",
}
TEXT_KEYS = ("text", "content", "message", "output", "result", "error", "summary", "body")
# shown on the header line (llm turns), or not at all (bookkeeping of the loop)
META_KEYS = {"model", "prompt_tokens", "completion_tokens", "cost_usd", "round", "nudge", "ok"}
MAX_LINES = {"system": 6, "tool_result": 20}
DEFAULT_MAX_LINES = 40


def content_text(content: Any) -> str:
    """The readable part of a step's content (JSON shapes vary by kind and by agent)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        parts: list[str] = []
        rest = {k: v for k, v in content.items() if k not in META_KEYS}
        if content.get("ok") is False:
            parts.append("✗ failed")
        for key in TEXT_KEYS:
            value = rest.pop(key, None)
            if isinstance(value, str) and value.strip():
                parts.append(value if key in ("text", "content") else f"{key}: {value}")
            elif value not in (None, "", [], {}):
                parts.append(f"{key}: {_compact(value)}")
        calls = rest.pop("tool_calls", None)
        if isinstance(calls, list):
            for call in calls:
                if isinstance(call, dict):
                    fn = call.get("function", call)
                    name = fn.get("name", "?") if isinstance(fn, dict) else "?"
                    args = fn.get("arguments", "") if isinstance(fn, dict) else ""
                    parts.append(f"→ {name}({_compact(args)})")
        for key, value in rest.items():
            if value not in (None, "", [], {}):
                parts.append(f"{key}: {_compact(value)}")
        return "\n".join(parts)
    return _compact(content)


def step_meta(content: Any) -> str:
    """An LLM turn's model, tokens and cost, for the header line ('' when absent)."""
    if not isinstance(content, dict):
        return ""
    bits = []
    if content.get("model"):
        bits.append(str(content["model"]))
    tokens = [content.get("prompt_tokens"), content.get("completion_tokens")]
    if any(isinstance(t, int) for t in tokens):
        bits.append(f"{fmt.count(sum(t for t in tokens if isinstance(t, int)))} tokens")
    if content.get("cost_usd") not in (None, 0):
        try:
            bits.append(fmt.money(Decimal(str(content["cost_usd"]))))
        except ArithmeticError:
            pass
    return " · ".join(bits)


def _compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    except (TypeError, ValueError):
        return str(value)


def step_renderable(step: model.Step, now: dt.datetime) -> RenderableType:
    """A step: `seq kind [tool] · agent · stage · time`, then its text (long text cut)."""
    head = Text(no_wrap=True, overflow="ellipsis")
    head.append(f"{step.seq:>3} ", style="dim")
    head.append(step.kind, style=KIND_STYLE.get(step.kind, ""))
    if step.tool_name:
        head.append(f" {step.tool_name}", style="bold")
    head.append(f" · {step.agent} · {step.stage}", style="dim")
    if step.attempt > 1:
        head.append(f" · attempt {step.attempt}", style="dim")
    head.append(f" · {fmt.clock_time(step.created_at, now)}", style="dim")
    meta = step_meta(step.content)
    if meta:
        head.append(f" · {meta}", style="dim")
    body = content_text(step.content)
    lines = body.splitlines()
    limit = MAX_LINES.get(step.kind, DEFAULT_MAX_LINES)
    if len(lines) > limit:
        lines = [*lines[:limit], f"… {len(lines) - limit} more lines"]
    if step.truncated:
        lines.append("… (cut: the step is longer than 4,000 characters)")
    text = Text("\n".join(lines), style="dim" if step.kind == "system" else "")
    return Group(head, Padding(text, (0, 0, 0, 4))) if lines else head
