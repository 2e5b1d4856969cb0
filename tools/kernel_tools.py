"""Kernel tools: what an agent can ask of the team's database.

Create subtasks of the task it works on, send and read messages, read and rewrite its
own memory, list and read skills. Each call is one short transaction on a pooled
connection; the kernel's rules (state machine, triggers, NOTIFY) apply exactly as for
the CLI, with the agent as the author.
"""

from __future__ import annotations

from typing import Literal

from agentos.kernel import memory, messages, skills, tasks
from agentos.kernel.memory import MAX_MEMORY
from agentos.kernel.models import Message
from agentos.tools.base import Tool, ToolContext, ToolError, ToolInput
from pydantic import Field

MAX_SUBTASKS = 50

# --------------------------------------------------------------- subtasks ----


class CreateSubtaskInput(ToolInput):
    title: str = Field(min_length=1, max_length=500, description="Short imperative title.")
    description: str = Field(default="", max_length=100_000, description="What to do and why.")
    acceptance: str = Field(
        default="", max_length=100_000, description="How a reviewer decides it is done."
    )
    role: str = Field(default="worker", description="Role that does it (e.g. worker).")
    priority: int = Field(default=0, ge=-1000, le=1000, description="Higher runs first.")
    depends_on: list[int] = Field(
        default_factory=list, description="Ids of tasks that must be done before this starts."
    )


async def create_subtask(ctx: ToolContext, args: CreateSubtaskInput) -> str:
    """Create a task whose parent is the current task; returns its id."""
    kernel = ctx.need_kernel()
    async with kernel.connection() as conn:
        if ctx.task_id is not None:
            n = await tasks.count_subtasks(conn, ctx.task_id)
            if n >= MAX_SUBTASKS:
                raise ToolError(
                    f"task {ctx.task_id} already has {n} subtasks (the limit is "
                    f"{MAX_SUBTASKS}); plan in larger pieces"
                )
        task = await tasks.create_task(
            conn,
            created_by=ctx.agent,
            title=args.title,
            description=args.description,
            acceptance=args.acceptance,
            role=args.role,
            priority=args.priority,
            depends_on=args.depends_on,
            parent_id=ctx.task_id,
        )
    deps = f", after {', '.join(f'#{d}' for d in task.depends_on)}" if task.depends_on else ""
    return f"created task #{task.id} [{task.status}] for {task.role}{deps}: {task.title}"


# --------------------------------------------------------------- messages ----


class SendMessageInput(ToolInput):
    body: str = Field(min_length=1, max_length=messages.MAX_BODY, description="The message.")
    to_agent: str | None = Field(default=None, description="Agent (wakes it) or person to address.")
    task_id: int | None = Field(
        default=None, description="Task whose thread it goes to; default: your current task."
    )
    channel: str | None = Field(
        default=None, description="Channel to post in; @name wakes a member agent."
    )
    reply_to: int | None = Field(
        default=None, description="Id of the message this answers (its thread, to its writer)."
    )
    broadcast: bool = Field(
        default=False, description="Send to every agent (no addressee, no task)."
    )
    kind: Literal["comment", "status", "question", "answer", "review"] = Field(
        default="comment", description="What sort of message it is."
    )


async def send_message(ctx: ToolContext, args: SendMessageInput) -> str:
    """Send a message to an agent, to a task's thread, or to everyone."""
    kernel = ctx.need_kernel()
    to_agent, task_id, channel = args.to_agent, args.task_id, args.channel
    if args.broadcast:
        if to_agent is not None or task_id is not None or channel is not None:
            raise ToolError("a broadcast has no to_agent, task_id or channel")
    elif to_agent is None and task_id is None and channel is None and args.reply_to is None:
        if ctx.task_id is None:
            raise ToolError("say who it is for: to_agent, task_id, channel, or broadcast=true")
        task_id = ctx.task_id
    async with kernel.connection() as conn:
        if args.reply_to is not None and to_agent is None:
            to_agent = (await messages.get_message(conn, args.reply_to)).from_agent
        msg = await messages.send_message(
            conn,
            body=args.body,
            to_agent=to_agent,
            task_id=task_id,
            channel=channel,
            from_agent=ctx.agent,
            kind="broadcast" if args.broadcast else args.kind,
            reply_to=args.reply_to,
        )
    return f"sent message #{msg.id} to {_audience(msg)}"


def _audience(msg: Message) -> str:
    parts = []
    if msg.to_agent:
        parts.append(msg.to_agent)
    if msg.task_id is not None:
        parts.append(f"task #{msg.task_id}")
    if msg.channel_id is not None:
        parts.append(f"channel {msg.channel or msg.channel_id}")
    return " on ".join(parts) if parts else "everyone"


class ReadMessagesInput(ToolInput):
    unread_only: bool = Field(default=True, description="Only messages not read yet.")
    task_id: int | None = Field(default=None, description="Only this task's thread.")
    limit: int = Field(default=20, ge=1, le=100, description="At most this many (the latest).")


async def read_messages(ctx: ToolContext, args: ReadMessagesInput) -> str:
    """Your messages (direct, broadcasts, threads of your tasks), oldest first; marks them read."""
    kernel = ctx.need_kernel()
    async with kernel.connection() as conn:
        found = await messages.list_messages(
            conn,
            agent=ctx.agent,
            task_id=args.task_id,
            unread_only=args.unread_only,
            limit=args.limit,
        )
        await messages.mark_read(conn, [m.id for m in found], reader=ctx.agent)
    if not found:
        return "no unread messages" if args.unread_only else "no messages"
    return "\n\n".join(_format_message(m) for m in found)


def _format_message(m: Message) -> str:
    when = m.created_at.strftime("%Y-%m-%d %H:%M:%S")
    who = m.from_agent or "someone"
    re_ = f" (re #{m.reply_to})" if m.reply_to else ""
    return f"#{m.id} [{m.kind}] {when} from {who} to {_audience(m)}{re_}:\n{m.body}"


# ----------------------------------------------------------------- memory ----


class ReadMemoryInput(ToolInput):
    pass


async def read_memory(ctx: ToolContext, args: ReadMemoryInput) -> str:
    """Your memory: notes you kept for yourself across tasks."""
    kernel = ctx.need_kernel()
    async with kernel.connection() as conn:
        text = await memory.read_memory(conn, ctx.agent)
    return text if text.strip() else "(your memory is empty)"


class WriteMemoryInput(ToolInput):
    text: str = Field(
        max_length=MAX_MEMORY,
        description=f"The new memory (at most {MAX_MEMORY} characters).",
    )
    append: bool = Field(
        default=False, description="Add to the end instead of replacing everything."
    )


async def write_memory(ctx: ToolContext, args: WriteMemoryInput) -> str:
    """Rewrite (or append to) your memory."""
    kernel = ctx.need_kernel()
    async with kernel.connection() as conn:
        text = args.text
        if args.append:
            old = await memory.read_memory(conn, ctx.agent)
            text = f"{old.rstrip()}\n{text}" if old.strip() else text
        await memory.write_memory(conn, ctx.agent, text)
    return f"memory saved ({len(text)} of {MAX_MEMORY} characters)"


# ----------------------------------------------------------------- skills ----


class ListSkillsInput(ToolInput):
    pass


async def list_skills(ctx: ToolContext, args: ListSkillsInput) -> str:
    """The skill library: names and one-line descriptions."""
    kernel = ctx.need_kernel()
    async with kernel.connection() as conn:
        found = await skills.list_skills(conn)
    if not found:
        return "no skills in the library"
    return "\n".join(f"{s.name}: {s.description or '(no description)'}" for s in found)


class ReadSkillInput(ToolInput):
    name: str = Field(min_length=1, description="The skill's name, as list_skills shows it.")


async def read_skill(ctx: ToolContext, args: ReadSkillInput) -> str:
    """One skill's document."""
    kernel = ctx.need_kernel()
    async with kernel.connection() as conn:
        skill = await skills.get_skill(conn, args.name)
    return f"# {skill.name}\n{skill.description}\n\n{skill.body}"


TOOLS = [
    Tool(
        "create_subtask",
        "Create a subtask of your current task, with acceptance criteria and optional "
        "dependencies on other task ids. Returns the new task's id.",
        CreateSubtaskInput,
        create_subtask,
    ),
    Tool(
        "send_message",
        "Send a message: to an agent or a person (to_agent), to a task's thread (task_id; "
        "default your current task), to a channel (channel; @name wakes a member), as an "
        "answer to a message (reply_to), or to everyone (broadcast).",
        SendMessageInput,
        send_message,
    ),
    Tool(
        "read_messages",
        "Read your messages (addressed to you, broadcasts, your channels, mentions, threads "
        "of tasks you hold), oldest first; they are marked read by you.",
        ReadMessagesInput,
        read_messages,
    ),
    Tool(
        "read_memory",
        "Read your memory: the notes you keep for yourself across tasks.",
        ReadMemoryInput,
        read_memory,
        read_only=True,
    ),
    Tool(
        "write_memory",
        f"Rewrite your memory (or append to it); at most {MAX_MEMORY} characters, so keep "
        "what will matter later.",
        WriteMemoryInput,
        write_memory,
    ),
    Tool(
        "list_skills",
        "List the skill library: how-to documents shared by the team.",
        ListSkillsInput,
        list_skills,
        read_only=True,
    ),
    Tool(
        "read_skill",
        "Read one skill document by name.",
        ReadSkillInput,
        read_skill,
        read_only=True,
    ),
]
