"""Aider: `aider --message PROMPT --yes-always --no-auto-commits`, plain text out.

Headless facts (aider 0.86, checked against the real CLI): with --message it sends one
request, applies the edits and exits; it prints a header (`Aider v...`, `Model: ...`),
the model's reply, `Tokens: N sent, M received.` (with `Cost: $x message, $y session.`
when it knows the price) and `Applied edit to FILE`. It has no JSON output and no
session to resume: a taken-over task starts it again on the worktree as it is. It
looks for git, which the sandbox hides, so it runs with --no-git (AgentOS commits);
its chat history goes to its private HOME, not the worktree. It reads OPENAI_API_BASE
(OPENAI_BASE_URL is passed under that name too).
"""

from __future__ import annotations

import re
from typing import ClassVar

from agentos.agents.executors.base import Event, PlainTextAdapter, Plan

TOKENS = re.compile(
    r"Tokens: ([\d.,]+k?) sent(?:, ([\d.,]+k?) cache \w+)*, ([\d.,]+k?) received\."
    r"(?: Cost: \$([\d.]+) message)?"
)
NOISE = ("Tokens:", "Applied edit", "Warning:", "Cost:", "Aider v", "Model:", "Git repo:",
         "Repo-map:", "Analytics", "HTTPSConnectionPool")  # fmt: skip


def _count(text: str) -> int:
    text = text.replace(",", "")
    return int(float(text[:-1]) * 1000) if text.endswith("k") else int(float(text))


class Aider(PlainTextAdapter):
    """Paul Gauthier's aider."""

    name: ClassVar[str] = "aider"
    binary: ClassVar[str] = "aider"
    needs: ClassVar[str] = (
        "a provider key (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...); OPENAI_API_BASE or "
        "OPENAI_BASE_URL for another server; executor_options.model (e.g. openai/gpt-4o)"
    )
    provider_env: ClassVar[tuple[str, ...]] = (
        "OPENAI_API_KEY", "OPENAI_API_BASE", "ANTHROPIC_API_KEY", "GEMINI_API_KEY",
        "OPENROUTER_API_KEY", "DEEPSEEK_API_KEY",
    )  # fmt: skip
    ignore: ClassVar[tuple[str, ...]] = (".aider*",)

    def argv(self, plan: Plan) -> list[str]:
        o = plan.options
        out = [plan.binary, "--message", plan.prompt, "--yes-always", "--no-auto-commits",
               "--no-git", "--no-check-update", "--no-show-release-notes",
               "--analytics-disable", "--no-pretty", "--no-stream", "--no-show-model-warnings",
               "--chat-history-file", str(plan.home / "aider.chat.history.md"),
               "--input-history-file", str(plan.home / "aider.input.history")]  # fmt: skip
        if o.model:
            out += ["--model", o.model]
        return out + list(o.args)

    def env(self, plan: Plan) -> dict[str, str]:
        env = super().env(plan)
        if "OPENAI_API_BASE" not in env and plan.environ.get("OPENAI_BASE_URL"):
            env["OPENAI_API_BASE"] = plan.environ["OPENAI_BASE_URL"]
        # litellm inside aider fetches its price list from the network without this
        env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        return env

    def parse(self, line: str) -> list[Event]:
        m = TOKENS.search(line)
        super().parse(line)
        if m is None:
            return []
        return [
            Event(
                "usage",
                prompt_tokens=_count(m.group(1)),
                completion_tokens=_count(m.group(3)),
                cost_usd=float(m.group(4)) if m.group(4) else None,
            )
        ]

    def final_message(self, output: str) -> str:
        lines = output.splitlines()
        # the reply sits between the header and the Tokens line
        end = max((i for i, ln in enumerate(lines) if ln.startswith("Tokens:")), default=len(lines))
        start = max((i + 1 for i, ln in enumerate(lines[:end]) if ln.startswith("Repo-map:")),
                    default=0)  # fmt: skip
        reply = [ln for ln in lines[start:end] if not ln.startswith(NOISE)]
        return "\n".join(reply).strip()[-2000:] or output[-2000:]
