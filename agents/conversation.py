"""How an agent answers the messages it is asked: one bounded LLM call per message.

An agent owes an answer to a message that woke it (addressed to it, a question on the
thread of a task it holds, an @mention in a channel it belongs to) and to a question on
a task's thread that waited for whoever took the task next (kernel.messages
.pending_answers). It answers

* when a wake-up activation reaches an idle agent (AgentRuntime.handle_activation), and
* while it works on a task, between the task's steps: `watch` runs beside the task's
  loop, answers what is owed at once (the questions that waited for this holder) and
  again whenever the agent's work channel is notified (a message that woke it).

Each answer is one LLM call on the role's cheap model (heartbeat_model), or on the
agent's own model where it has one (`agentos agent create --model`), without tools,
under the agent's daily budget and, for a task's message, the task's budget. The
agent sees what it needs to answer, not the message alone: its current task (title and
status), its last few steps on it, its memory and the thread so far; each part capped,
so the prompt stays small whatever the task's history. At most MAX_PER_WAKE messages
are answered per wake-up (a later wake-up answers the rest). The answer goes back to whoever wrote, in the same thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from agentos.agents.config import AgentSettings, RoleConfig, with_agent_model
from agentos.agents.llm import LLMClient, LLMUnavailable
from agentos.kernel import errors, roster
from agentos.kernel import messages as kmessages
from agentos.kernel.db import Kernel
from agentos.kernel.models import Message
from agentos.kernel.usage import BudgetExceeded

log = logging.getLogger("agentos.agents")

BATCH = 5  # owed messages read at a time
MAX_PER_WAKE = 25  # answers per wake-up at most (the budgets bound them too)
CONTEXT_STEPS = 6  # the agent's last steps on its task
STEP_CHARS = 200
MEMORY_CHARS = 2000
THREAD_MESSAGES = 6
THREAD_CHARS = 500
BODY_CHARS = 8000
SAFETY_SECONDS = 30.0  # a busy agent looks for owed answers this often without a wake-up

# The scripted model (agents/scripted.py) recognises this phrase in the system prompt.
SYSTEM = (
    "You are {agent}, the {role} of an AgentOS team, answering a message. Answer in a "
    "few sentences from what you know below; say so when you do not know. You cannot use "
    "tools in this answer."
)


def _cut(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def step_line(step: dict[str, Any]) -> str:
    """One step of the transcript as one short line (kernel: agent_recent_steps)."""
    text = str(step.get("text") or "")
    if step["kind"] == "tool_call":
        text = f"{step.get('tool_name')}({text})"
    elif step["kind"] == "tool_result":
        text = f"{step.get('tool_name')} {'failed' if step.get('ok') is False else 'ok'}: {text}"
    return f"{step['kind']}: {_cut(text, STEP_CHARS)}"


def answer_prompt(ctx: kmessages.AnswerContext, message: Message) -> list[dict[str, str]]:
    """The two messages of the answering call: who the agent is, and what it knows."""
    lines: list[str] = []
    if ctx.task is not None:
        t = ctx.task
        mine = t.get("holder") == ctx.agent
        lines.append(
            f"Your current task: #{t['id']} {t['title']} ({t['status']})"
            if mine or message.task_id is None
            else f"The task this message is about: #{t['id']} {t['title']} ({t['status']})"
        )
        if ctx.steps:
            lines.append("Your recent steps on it (oldest first):")
            lines += [f"- {step_line(s)}" for s in reversed(ctx.steps)]
        else:
            lines.append("You have taken no steps on it yet.")
    else:
        lines.append("Your current task: none (you are idle).")
    memory = ctx.memory.strip()
    lines.append(f"Your memory:\n{memory[:MEMORY_CHARS]}" if memory else "Your memory is empty.")
    if ctx.thread:
        lines.append("Earlier in this conversation:")
        lines += [f"- {m.from_agent}: {_cut(m.body, THREAD_CHARS)}" for m in ctx.thread]
    where = (
        f" on task #{message.task_id}"
        if message.task_id is not None
        else (f" in channel {message.channel}" if message.channel else "")
    )
    lines.append(
        f"Message #{message.id} from {message.from_agent or 'someone'} [{message.kind}]{where}:"
    )
    lines.append(message.body[:BODY_CHARS])
    return [
        {"role": "system", "content": SYSTEM.format(agent=ctx.agent, role=ctx.role)},
        {"role": "user", "content": "\n".join(lines)},
    ]


class Answerer:
    """Answers the messages an agent owes answers to (one lock per agent: never twice)."""

    def __init__(
        self, kernel: Kernel, role: RoleConfig, llm: LLMClient, settings: AgentSettings
    ) -> None:
        self.kernel = kernel
        self.role = role
        self.llm = llm
        self.settings = settings
        self._locks: dict[str, asyncio.Lock] = {}
        self.answered = 0  # answers written by this process (tests, logs)

    async def answer_pending(self, agent: str) -> int:
        """Answer what the agent owes, oldest first, BATCH at a time, at most MAX_PER_WAKE
        (the rest waits for the next wake-up); returns how many were answered."""
        lock = self._locks.setdefault(agent, asyncio.Lock())
        async with lock:
            done = tried = 0
            while tried < MAX_PER_WAKE:
                async with self.kernel.connection() as conn:
                    pending = await kmessages.pending_answers(
                        conn, agent, limit=min(BATCH, MAX_PER_WAKE - tried)
                    )
                if not pending:
                    break
                for m in pending:
                    tried += 1
                    if await self._answer(agent, m):
                        done += 1
            return done

    async def _answer(self, agent: str, message: Message) -> bool:
        async with self.kernel.connection() as conn:
            ctx = await kmessages.answer_context(
                conn, agent, message, steps=CONTEXT_STEPS, thread=THREAD_MESSAGES
            )
            own = await roster.overrides(conn, agent)
        # the agent's own model answers for it, as it works its tasks (read per answer, so
        # `agentos agent edit --model` takes effect at once); else the role's cheap model
        role = with_agent_model(self.role, self.settings, own.model if own else None)
        try:
            reply = await self.llm.chat(
                agent=agent,
                role=role,
                task_id=message.task_id,
                model=role.heartbeat_model,  # the cheap model: answering is routine
                tools=[],
                messages=answer_prompt(ctx, message),
            )
            text = reply.content
        except BudgetExceeded as exc:
            text = f"I cannot answer now: {exc}."
        except LLMUnavailable as exc:
            log.warning("%s: no model answered message #%s: %s", agent, message.id, exc)
            text = "I could not reach my model to answer this; ask me again later."
        async with self.kernel.connection() as conn:
            sent = await kmessages.answer(conn, message, from_agent=agent, body=text)
        if sent is not None:
            self.answered += 1
            log.info(
                "%s answered message #%s (%s) with #%s",
                agent,
                message.id,
                message.from_agent,
                sent.id,
                extra={"action": "agent.answered", "task": message.task_id},
            )
        return sent is not None

    async def watch(self, agent: str, wake: asyncio.Event) -> None:
        """While the agent works: answer what it owes now, then on every wake-up (and every
        SAFETY_SECONDS, should a notification be lost). Runs until cancelled."""
        while True:
            wake.clear()
            try:
                await self.answer_pending(agent)
            except (errors.KernelError, OSError) as exc:
                log.warning("%s: answering messages failed: %s", agent, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=SAFETY_SECONDS)
