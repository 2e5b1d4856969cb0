"""`y` and `x`: decide a task that waits for a person, as `agentos task approve|reject`.

* ApproveScreen: what the merge will bring (title, branch, why it waits, the reviewer's
  comment and diffstat, as `agentos task show` prints them for a held task); y merges.
* RejectForm: the feedback the worker reads in its next prompt (required).

A task blocked on its budget is approved with a budget instead: the App opens the
budget form in its approve mode (budget_form.BudgetForm(approve=True)).
"""

from __future__ import annotations

from typing import Any

from agentos.agents.gate import describe_diffstat
from agentos.agents.workspace import branch_name
from agentos.kernel.models import Task
from agentos.tui import fmt
from agentos.tui.confirm_screen import ConfirmScreen
from agentos.tui.form_screen import FormScreen
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, Static, TextArea

LISTED = 8  # changed files listed on the approve screen (the rest are counted)


def held_merge(task: Task, base: str | None = None) -> Text:
    """What approving a held task merges, as plain Text (stored text is never markup)."""
    held: dict[str, Any] = task.metadata.get("approval") or {}
    t = Text()
    t.append(f"Merge task #{task.id}?\n", style="bold")
    t.append(fmt.one_line(fmt.shown(task.title), 140) + "\n")
    t.append("branch ", style="dim")
    t.append(fmt.shown(task.branch or branch_name(task.id)))
    t.append(" into ", style="dim")
    t.append((base or "the base branch") + "\n")
    t.append("waits for: ", style="dim")
    t.append(fmt.one_line(fmt.shown(str(held.get("reason") or "approval of its merge")), 300))
    t.append("\n")
    if held.get("reviewer"):
        t.append(f"approved by {fmt.shown(str(held['reviewer']))}: ", style="dim")
        t.append(fmt.one_line(fmt.shown(str(held.get("comment") or "")), 300) + "\n")
    if "files" in held:
        t.append("changes: ", style="dim")
        t.append(describe_diffstat(held) + "\n", style="bold")
        changes = held.get("changes") or []
        for c in changes[:LISTED]:
            lines = f"+{c['added']} -{c['deleted']}" if c.get("added") is not None else "binary"
            t.append(f"  {lines:<14} ", style="green" if c.get("added") is not None else "")
            t.append(fmt.one_line(fmt.shown(str(c.get("path"))), 56) + "\n")
        more = int(held.get("files") or 0) - min(len(changes), LISTED)
        if more > 0:
            t.append(f"  and {more} more\n", style="dim")
    t.append("y merges it and finishes the task; n keeps it waiting", style="dim")
    return t


class ApproveScreen(ConfirmScreen):
    """Confirm a held merge; True merges (the App runs agents.gate.approve)."""

    DEFAULT_CSS = """
    ApproveScreen > Vertical {
        width: 80;
        border: round $success;
    }
    """

    def __init__(self, task: Task, base: str | None = None) -> None:
        super().__init__(held_merge(task, base))
        self.task_id = task.id


class RejectForm(FormScreen[Task | None]):
    """Sends the task back with feedback (kernel.approvals.reject); returns the task."""

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.task_id = task.id
        self.title_text = task.title
        self.held: dict[str, Any] = task.metadata.get("approval") or {}

    def compose(self) -> ComposeResult:
        box = Vertical(id="dialog")
        box.border_title = f"send #{self.task_id} back"
        box.border_subtitle = "ctrl+s send back · escape close"
        about = Text(fmt.one_line(fmt.shown(self.title_text), 70))
        if self.held.get("reviewer"):
            about.append(f"\napproved by {fmt.shown(str(self.held['reviewer']))}: ", style="dim")
            about.append(fmt.one_line(fmt.shown(str(self.held.get("comment") or "")), 140))
        about.append("\nThe worker reads your feedback in its next prompt.", style="dim")
        with box:
            yield Static(about, classes="row")
            with Horizontal(classes="row"):
                yield Label("Feedback", classes="label")
                yield TextArea(id="feedback", compact=True, soft_wrap=True)
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Send back", id="submit", variant="warning", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#feedback", TextArea).focus()

    async def submit(self) -> None:
        text = self.query_one("#feedback", TextArea).text
        if not text.strip():
            raise ValueError("the feedback is empty: write what the worker must change")
        service = self.app.service  # type: ignore[attr-defined]
        task = await self.call(lambda: service.reject_task(self.task_id, text))
        self.dismiss(task)
