"""`n`: the new-task form (title, description, acceptance, role, priority)."""

from __future__ import annotations

from agentos.kernel.models import Task
from agentos.tui.form_screen import FormScreen
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Static, TextArea


class NewTaskForm(FormScreen[Task | None]):
    """Creates a task through agentos.kernel.tasks.create_task; returns it."""

    def __init__(self, roles: list[str] | None = None) -> None:
        super().__init__()
        self.roles = roles or ["worker", "reviewer", "orchestrator"]

    def compose(self) -> ComposeResult:
        box = Vertical(id="dialog")
        box.border_title = "new task"
        box.border_subtitle = "ctrl+s create · escape close"
        with box:
            with Horizontal(classes="row"):
                yield Label("Title", classes="label")
                yield Input(placeholder="what should be done", id="title", compact=True)
            with Horizontal(classes="row"):
                yield Label("Description", classes="label")
                yield TextArea(id="description", compact=True, soft_wrap=True)
            with Horizontal(classes="row"):
                yield Label("Acceptance", classes="label")
                yield TextArea(id="acceptance", compact=True, soft_wrap=True)
            with Horizontal(classes="row"):
                yield Label("Role", classes="label")
                yield Input(
                    value="worker",
                    id="role",
                    compact=True,
                    suggester=SuggestFromList(self.roles, case_sensitive=False),
                )
                yield Label(" Priority", classes="label")
                yield Input(value="0", id="priority", type="integer", compact=True)
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Create", id="submit", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#title", Input).focus()

    async def submit(self) -> None:
        title = self.query_one("#title", Input).value.strip()
        if not title:
            raise ValueError("a task needs a title")
        raw = self.query_one("#priority", Input).value.strip() or "0"
        try:
            priority = int(raw)
        except ValueError:
            raise ValueError(f"priority must be a whole number, not {raw!r}") from None
        service = self.app.service  # type: ignore[attr-defined]
        task = await self.call(
            lambda: service.create_task(
                title=title,
                description=self.query_one("#description", TextArea).text,
                acceptance=self.query_one("#acceptance", TextArea).text,
                role=self.query_one("#role", Input).value.strip() or "worker",
                priority=priority,
            )
        )
        self.dismiss(task)
