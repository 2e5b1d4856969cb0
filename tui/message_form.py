"""`m`: send a message to an agent, about a task (or both), or in a channel."""

from __future__ import annotations

from agentos.tui.form_screen import FormScreen
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Select, Static, TextArea

KINDS = ("comment", "question", "answer", "status", "review", "broadcast")


class MessageForm(FormScreen[int | None]):
    """Sends through agentos.kernel.messages.send_message (it wakes the addressee); returns the id."""

    def __init__(
        self,
        *,
        to_agent: str | None = None,
        task_id: int | None = None,
        channel: str | None = None,
        agents: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.to_agent = to_agent
        self.task_id = task_id
        self.channel = channel
        self.agents = agents or []

    def compose(self) -> ComposeResult:
        box = Vertical(id="dialog")
        box.border_title = "message"
        box.border_subtitle = "ctrl+s send · escape close"
        with box:
            with Horizontal(classes="row"):
                yield Label("To agent", classes="label")
                yield Input(
                    value=self.to_agent or "",
                    placeholder="agent name (optional when a task is given)",
                    id="to",
                    compact=True,
                    suggester=SuggestFromList(self.agents) if self.agents else None,
                )
            with Horizontal(classes="row"):
                yield Label("Task", classes="label")
                yield Input(
                    value=f"#{self.task_id}" if self.task_id else "",
                    placeholder="#id (optional when an agent is given)",
                    id="task",
                    compact=True,
                )
                yield Label(" Kind", classes="label")
                yield Select(
                    [(k, k) for k in KINDS],
                    value="comment",
                    id="kind",
                    allow_blank=False,
                    compact=True,
                )
            with Horizontal(classes="row"):
                yield Label("Channel", classes="label")
                yield Input(
                    value=self.channel or "",
                    placeholder="a channel (instead of a task); @name wakes a member",
                    id="channel",
                    compact=True,
                )
            with Horizontal(classes="row"):
                yield Label("Message", classes="label")
                yield TextArea(id="body", compact=True, soft_wrap=True)
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Send", id="submit", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#body", TextArea).focus()

    async def submit(self) -> None:
        to = self.query_one("#to", Input).value.strip() or None
        raw = self.query_one("#task", Input).value.strip().removeprefix("#")
        if raw and not raw.isdigit():
            raise ValueError(f"task must be an id like #12, not {raw!r}")
        task_id = int(raw) if raw else None
        channel = self.query_one("#channel", Input).value.strip().removeprefix("#") or None
        body = self.query_one("#body", TextArea).text
        if not body.strip():
            raise ValueError("the message is empty")
        if to is None and task_id is None and channel is None:
            raise ValueError("give an agent, a task (or both), or a channel")
        kind = str(self.query_one("#kind", Select).value)
        service = self.app.service  # type: ignore[attr-defined]
        mid = await self.call(
            lambda: service.send_message(
                body=body, to_agent=to, task_id=task_id, channel=channel, kind=kind
            )
        )
        self.dismiss(mid)
