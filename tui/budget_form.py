"""`b`: raise a task's budget; a blocked or failed task is retried with it.

`y` on a task blocked on its budget opens the same form in its approve mode: saving is
`agentos task approve N --budget USD` (agents.gate.approve with the budget)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from agentos.kernel.models import Task
from agentos.tui import fmt
from agentos.tui.form_screen import FormScreen
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static


class BudgetForm(FormScreen[Task | None]):
    """Sets tasks.budget_usd (and the task's budget scope), then retries a stuck task."""

    def __init__(
        self,
        *,
        task_id: int,
        title: str,
        status: str,
        budget: Decimal | None,
        spent: Decimal,
        approve: bool = False,
    ) -> None:
        super().__init__()
        self.approve = approve
        self.task_id = task_id
        self.title_text = title
        self.status = status
        self.budget = budget
        self.spent = spent

    def suggested(self) -> Decimal:
        """Double the current budget (or the spend), at least one dollar."""
        base = self.budget if self.budget else self.spent
        return max(Decimal(1), (base * 2).quantize(Decimal("0.01")))

    def compose(self) -> ComposeResult:
        box = Vertical(id="dialog")
        box.border_title = (
            f"approve a budget for #{self.task_id}"
            if self.approve
            else f"budget of #{self.task_id}"
        )
        box.border_subtitle = "ctrl+s save · escape close"
        retry = self.status in ("blocked", "failed")
        if self.approve:
            after = "\nIts budget ran out: saving approves the new budget and resumes it."
        else:
            after = "\nSaving retries the task." if retry else ""
        with box:
            yield Static(
                Text(  # plain Text: a stored title is never read as markup
                    f"{fmt.one_line(self.title_text, 70)}\n"
                    f"status {self.status} · spent {fmt.money(self.spent)} · "
                    f"budget {fmt.money(self.budget) if self.budget is not None else 'none'}"
                    + after
                ),
                classes="row",
            )
            with Horizontal(classes="row"):
                yield Label("New budget $", classes="label")
                yield Input(value=str(self.suggested()), id="budget", type="number", compact=True)
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button(
                    "Approve and resume" if self.approve else "Save and retry" if retry else "Save",
                    id="submit",
                    variant="primary",
                    compact=True,
                )
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#budget", Input).focus()

    async def submit(self) -> None:
        raw = self.query_one("#budget", Input).value.strip().removeprefix("$")
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise ValueError(f"not an amount: {raw!r}") from None
        if value <= 0:
            raise ValueError("a budget must be more than $0")
        if value <= self.spent:
            raise ValueError(f"{fmt.money(self.spent)} is already spent: give more than that")
        service = self.app.service  # type: ignore[attr-defined]
        if self.approve:
            task = await self.call(lambda: service.approve_task(self.task_id, budget_usd=value))
        else:
            task = await self.call(lambda: service.raise_budget(self.task_id, value))
        self.dismiss(task)
