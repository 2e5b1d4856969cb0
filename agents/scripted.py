"""The scripted model: a litellm custom provider (`agentos/scripted`) that plays a
deterministic script of responses and tool calls. The demo (`agentos start --demo`) and
the tests use it; nothing here reaches a network.

The script is a small policy over the conversation it is given: the role comes from
the system prompt, the turn from the number of assistant messages since the last user
message, the task from the first user message. Demo goals and subtasks are data in
DEMO_PLAN / DEMO_FILES; any other task gets a generic, still real, piece of work (a
notes file, committed). Markers in a task title steer the script for tests:
`[reject-once]` makes the reviewer reject the first submission; in a task's text,
`[call TOOL {"arg": ...}]` makes the worker's first turn call that tool (an MCP tool,
say) before its usual script; `[steps=N]` makes the
worker write N small files, one per turn, before it commits (a long task for
`agentos bench steps`). Asked to answer a message (agents/conversation.py), it
answers with what it was shown: the agent's task, its last step, its memory and the
message.
AGENTOS_SCRIPTED_DELAY=<seconds> makes worker calls after the test run wait
(to kill a worker mid-task in tests).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

from agentos.agents.demo import DEMO_FILES, DEMO_GOAL, DEMO_PLAN
from litellm.llms.custom_llm import CustomLLM
from litellm.types.utils import ChatCompletionMessageToolCall, Choices, Function, Message, Usage


def _text(msg: dict[str, Any]) -> str:
    content = msg.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def _role(m: Any) -> str:
    return str(m.get("role") if isinstance(m, dict) else getattr(m, "role", ""))


CALL_MARKER = re.compile(r"\[call ([A-Za-z0-9_-]+) (\{[^\]]*\})\]")


def _call(name: str, **args: Any) -> dict[str, Any]:
    return {"id": f"call_{uuid.uuid4().hex[:12]}", "name": name, "arguments": args}


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "task"


def plan(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The scripted reply to a conversation: (text, tool calls)."""
    system = _text(messages[0]) if messages and messages[0].get("role") == "system" else ""
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    last_user = users[-1] if users else 0
    turn = sum(1 for m in messages[last_user:] if m.get("role") == "assistant")
    prompt = _text(messages[users[0]]) if users else ""
    first_line = prompt.splitlines()[0] if prompt else ""
    title = first_line.split(": ", 1)[1].strip() if ": " in first_line else first_line
    match = re.search(r"#(\d+)", first_line)
    task_id = match.group(1) if match else "0"
    latest = _text(messages[last_user]) if users else ""
    if "answering a message" in system:
        return _answer(system, latest), []
    if "the orchestrator" in system:
        return _orchestrator(latest, title, turn)
    if "the reviewer" in system:
        return _reviewer(latest, title, turn)
    if "a worker" in system:
        calls = [
            {"id": f"call_{uuid.uuid4().hex[:12]}", "name": name, "arguments": json.loads(args)}
            for name, args in CALL_MARKER.findall(prompt)
        ]
        if calls:
            if turn == 0:
                return "Calling the tools the task names.", calls
            turn -= 1
        return _worker(latest, title, task_id, turn)
    return "Nothing to do.", []


def _answer(system: str, prompt: str) -> str:
    """An answer that repeats what the agent was shown (agents/conversation.py), so a
    test can see the context reached the model: its task, its last step, its memory."""
    who = re.match(r"You are ([^,]+),", system)
    lines = prompt.splitlines()
    task = next((ln for ln in lines if ln.startswith(("Your current task:", "The task this"))), "")
    steps: list[str] = []
    if any(ln.startswith("Your recent steps") for ln in lines):
        start = next(i for i, ln in enumerate(lines) if ln.startswith("Your recent steps"))
        for ln in lines[start + 1 :]:
            if not ln.startswith("- "):
                break
            steps.append(ln[2:])
    head = next((i for i, ln in enumerate(lines) if ln.startswith("Message #")), len(lines))
    body = " ".join(lines[head + 1 :]).strip()
    memory = next((ln for ln in lines if ln.startswith(("Your memory", "Your memory is"))), "")
    mem_text = lines[lines.index(memory) + 1] if memory == "Your memory:" else "(empty)"
    parts = [f"{who.group(1) if who else 'An agent'} here."]
    if task:
        parts.append(task.replace("Your current task", "My current task").rstrip(".") + ".")
    if steps:
        parts.append(f"My last step: {steps[-1].rstrip('.')}.")
    parts.append(f"My memory: {mem_text[:80].rstrip('.')}.")
    parts.append(f"You wrote: {body[:120]}")
    return " ".join(parts)


def _orchestrator(prompt: str, title: str, turn: int) -> tuple[str, list[dict[str, Any]]]:
    if "All subtasks are done" in prompt:
        return "Every subtask is merged.", [
            _call("complete_goal", summary=f"{title}: all subtasks done and merged.")
        ]
    if "No subtasks yet" in prompt and turn == 0:
        steps = (
            DEMO_PLAN
            if DEMO_GOAL.lower() in title.lower()
            else [
                {
                    "title": title.replace("[reject-once]", "").strip() or title,
                    "description": f"Do what the goal says: {title}",
                    "acceptance": "the change is committed and the checks pass",
                }
            ]
        )
        calls = [
            _call(
                "create_subtask",
                title=s["title"],
                description=s["description"],
                acceptance=s["acceptance"],
                role="worker",
            )
            for s in steps
        ]
        return f"Planning {len(steps)} subtask(s).", calls
    return "The plan is in place.", [
        _call("plan_done", summary="subtasks created; waiting for them")
    ]


def _worker(prompt: str, title: str, task_id: str, turn: int) -> tuple[str, list[dict[str, Any]]]:
    sent_back = "sent this task back" in prompt
    many = re.search(r"\[steps=(\d+)\]", title)
    if many is not None:
        n = int(many.group(1))
        if turn < n:
            return f"Step {turn + 1} of {n}.", [
                _call("write_file", path=f"steps/step-{turn + 1}.txt", content=f"{turn + 1}\n")
            ]
        if turn == n:
            return "Committing.", [_call("git_commit", message=f"task #{task_id}: {n} steps")]
        return "Done.", [_call("submit_for_review", summary=f"{n} steps written")]
    if turn == 0:
        files = DEMO_FILES.get(title.replace("[reject-once]", "").strip())
        if files is None:
            files = {
                f"notes/task-{task_id}-{_slug(title)}.md": f"# {title}\n\nDone by the scripted worker.\n"
            }
        if sent_back:
            files = {
                **files,
                f"notes/task-{task_id}-review.md": "Addressed the reviewer's feedback.\n",
            }
        return "Writing the files.", [
            _call("write_file", path=p, content=c) for p, c in files.items()
        ]
    if turn == 1:
        return "Running the tests.", [_call("run_command", command="python -m pytest -q")]
    if turn == 2:
        return "Committing.", [_call("git_commit", message=f"task #{task_id}: {title}")]
    return "Done.", [
        _call(
            "submit_for_review",
            summary=f"{title}: implemented with tests"
            + (" (feedback addressed)" if sent_back else ""),
        )
    ]


def _reviewer(prompt: str, title: str, turn: int) -> tuple[str, list[dict[str, Any]]]:
    if turn == 0:
        return "Reading the diff.", [_call("git_diff")]
    if ": FAILED" in prompt:
        return "The check failed.", [
            _call("reject", feedback="The check failed; make the tests pass.")
        ]
    if "[reject-once]" in title and "Rejections so far: 0" in prompt:
        return "One thing to fix.", [
            _call("reject", feedback="Please add a note describing the change.")
        ]
    return "Looks good.", [_call("approve", comment="Acceptance criteria met; tests pass.")]


def _scripted_delay() -> float:
    from agentos.agents.config import AgentSettings

    return AgentSettings().scripted_delay


class ScriptedLLM(CustomLLM):
    """litellm custom provider for `agentos/scripted`."""

    async def acompletion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
        model_response = kwargs.get("model_response") or args[3]
        delay = _scripted_delay()
        system = _text(messages[0]) if messages else ""
        # the delay starts once the tests have run, so a test can kill a worker that has
        # completed some tool calls and is waiting on the model
        ran_tests = any(
            _role(m) == "tool"
            and (m.get("name") if isinstance(m, dict) else getattr(m, "name", None))
            == "run_command"
            for m in messages
        )
        if delay and "a worker" in system and ran_tests:
            await asyncio.sleep(delay)
        text, calls = plan([dict(m) if not isinstance(m, dict) else m for m in messages])
        tool_calls = [
            ChatCompletionMessageToolCall(
                id=c["id"],
                type="function",
                function=Function(name=c["name"], arguments=json.dumps(c["arguments"])),
            )
            for c in calls
        ]
        msg = Message(role="assistant", content=text, tool_calls=tool_calls or None)
        model_response.choices = [
            Choices(index=0, message=msg, finish_reason="tool_calls" if calls else "stop")
        ]
        prompt_tokens = sum(len(_text(m).split()) for m in messages) + 20
        completion_tokens = len(text.split()) + sum(
            len(json.dumps(c["arguments"]).split()) for c in calls
        )
        model_response.usage = Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )
        model_response.model = "agentos/scripted"
        return model_response

    def completion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
        return asyncio.run(self.acompletion(model, messages, *args, **kwargs))
