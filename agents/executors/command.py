"""`command`: any CLI, given an argv template; its output's tail is the final message.

The template's placeholders: {prompt} (the rendered prompt), {prompt_file} (a file
holding it), {worktree}, {task_id}. Goose, for one, runs this way
(`[goose, run, --no-session, -i, "{prompt_file}"]`). A line of JSON that carries
`"type": "result"` and a `result` (or `"type": "usage"`) is read as such, so a wrapper
script can report its final message and its cost.
"""

from __future__ import annotations

from typing import ClassVar

from agentos.agents.executors.base import Event, PlainTextAdapter, Plan, loads


class Command(PlainTextAdapter):
    """Any command line."""

    name: ClassVar[str] = "command"
    binary: ClassVar[str] = ""
    needs: ClassVar[str] = "executor_options.command (an argv template); pass_env for its keys"

    def __init__(self) -> None:
        super().__init__()
        self.result: str | None = None

    def argv(self, plan: Plan) -> list[str]:
        template = plan.options.command
        if not template:
            raise ValueError("the command executor needs executor_options.command")
        values = {
            "prompt": plan.prompt,
            "prompt_file": str(plan.prompt_file),
            "worktree": str(plan.worktree),
            "task_id": str(plan.task_id),
        }
        # str.replace, not format(): a prompt's own braces must stay as they are
        out = []
        for part in template:
            for k, v in values.items():
                part = part.replace("{" + k + "}", v)
            out.append(part)
        if plan.options.binary:
            out[0] = plan.binary
        return out + list(plan.options.args)

    def parse(self, line: str) -> list[Event]:
        ev = loads(line)
        if ev is not None and ev.get("type") == "result" and isinstance(ev.get("result"), str):
            self.result = ev["result"]
            return []
        if ev is not None and ev.get("type") == "usage":
            return [
                Event(
                    "usage",
                    model=str(ev.get("model") or "command"),
                    prompt_tokens=int(ev.get("prompt_tokens") or 0),
                    completion_tokens=int(ev.get("completion_tokens") or 0),
                    cost_usd=float(ev.get("cost_usd") or 0.0),
                )
            ]
        return super().parse(line)

    def final_message(self, output: str) -> str:
        return self.result if self.result is not None else output[-2000:]

    def find_binary(self, configured: str | None) -> str | None:
        return super().find_binary(configured) if configured else None
