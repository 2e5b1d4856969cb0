"""Enter on a card: one task in full, live (description, acceptance, dependencies,
subtasks, the agent's steps, messages, cost, branch)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from agentos.tui import fmt, model
from agentos.tui.connection_banner import ConnectionBanner
from agentos.tui.transcript import step_renderable
from rich.console import Group
from rich.padding import Padding
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, OptionList, RichLog, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option

STATUS_STYLE = {
    "inbox": "bold",
    "assigned": "bold cyan",
    "in_progress": "bold green",
    "review": "bold magenta",
    "approval": "bold yellow",  # waits for a person: y approves, x rejects
    "done": "bold green",
    "blocked": "bold yellow",
    "failed": "bold red",
    "cancelled": "dim",
}


def summary_line(d: model.TaskDetail) -> Text:
    """Status, role, holder, priority, attempts, branch, cost against budget."""
    t = d.task
    s = Text(no_wrap=False)
    s.append(str(t["status"]), style=STATUS_STYLE.get(str(t["status"]), ""))
    s.append(f" · {t['role']}", style="")
    if t.get("holder"):
        s.append(" · ", style="dim")
        s.append(str(t["holder"]), style="cyan")
    s.append(f" · p{t['priority']}", style="dim")
    s.append(f" · try {t['attempts']}/{t['max_attempts']}", style="dim")
    if t.get("rejections"):
        s.append(f" · rejected {t['rejections']} times", style="yellow")
    s.append(" · branch ", style="dim")
    s.append(str(t.get("branch") or "-"))
    s.append(" · ", style="dim")
    budget = t.get("budget_usd")
    over = budget is not None and d.cost_usd >= Decimal(budget)
    s.append(fmt.money(d.cost_usd), style="bold red" if over else "bold")
    s.append(f" of {fmt.money(budget)}" if budget is not None else " (no budget)", style="dim")
    tokens = d.prompt_tokens + d.completion_tokens
    s.append(f" · {d.calls} calls · {fmt.count(tokens)} tokens", style="dim")
    return s


def _section(title: str, body: str | Text) -> Group:
    head = Text(title, style="bold underline")
    text = body if isinstance(body, Text) else Text(body or "-", style="" if body else "dim")
    return Group(head, text, Text(""))


def overview(d: model.TaskDetail, now: dt.datetime) -> Group:
    """Description, acceptance, result or error, and when things happened."""
    t = d.task
    parts = [
        _section("Description", str(t.get("description") or "")),
        _section("Acceptance criteria", str(t.get("acceptance") or "")),
    ]
    if t.get("error"):
        parts.append(_section("Error", Text(str(t["error"]), style="red")))
    if t.get("result"):
        parts.append(_section("Result", str(t["result"])))
    when = Text(style="dim")
    when.append(f"created {fmt.age(t['created_at'], now)} ago by {t['created_by']}")
    if t.get("started_at"):
        when.append(f" · started {fmt.age(t['started_at'], now)} ago")
    if t.get("completed_at"):
        when.append(f" · finished {fmt.age(t['completed_at'], now)} ago")
    when.append(f" · updated {fmt.age(t['updated_at'], now)} ago")
    parts.append(Group(when, Text("")))
    return Group(*parts)


class TaskScreen(Screen[None]):
    """The task screen; its data follows NOTIFY on the task, its steps and messages."""

    DEFAULT_CSS = """
    TaskScreen #task-title {
        height: 1;
        background: $panel;
        text-style: bold;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        padding: 0 1;
    }
    TaskScreen #task-summary {
        height: auto;
        max-height: 3;
        padding: 0 1;
    }
    TaskScreen TabbedContent {
        height: 1fr;
    }
    TaskScreen TabPane {
        padding: 0 1;
    }
    TaskScreen RichLog {
        background: $surface;
        scrollbar-size-vertical: 1;
    }
    TaskScreen #related {
        height: auto;
        max-height: 12;
        border: none;
        border-top: hkey $surface-lighten-2;
        border-title-color: $text-muted;
        padding: 0;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    TaskScreen #related:focus {
        border: none;
        border-top: hkey $accent;
    }
    """

    BINDINGS = [
        Binding("escape,backspace", "back", "Back", show=True),
        Binding("1", "tab('overview')", "Overview", show=False),
        Binding("2", "tab('transcript')", "Transcript", show=False),
        Binding("3", "tab('messages')", "Messages", show=False),
        Binding("4", "tab('activity')", "Activity", show=False),
    ]

    def __init__(self, task_id: int) -> None:
        super().__init__()
        self.task_id = task_id
        self.detail: model.TaskDetail | None = None
        self._last_step = 0
        self._last_message = 0
        self._ready = False
        self._pending: tuple[model.TaskDetail | None, dt.datetime | None] | None = None

    def compose(self) -> ComposeResult:
        yield ConnectionBanner()
        yield Static(f"#{self.task_id} loading…", id="task-title")
        yield Static("", id="task-summary")
        with TabbedContent(initial="overview"):
            with TabPane("1 Overview", id="overview"):
                with VerticalScroll():
                    yield Static("", id="overview-text")
                    yield OptionList(id="related")
            with TabPane("2 Transcript", id="transcript"):
                yield RichLog(id="steps", wrap=True, min_width=20, auto_scroll=True)
            with TabPane("3 Messages", id="messages"):
                yield RichLog(id="message-log", wrap=True, min_width=20, auto_scroll=True)
            with TabPane("4 Activity", id="activity"):
                yield RichLog(id="activity-log", wrap=True, min_width=20, auto_scroll=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#related", OptionList).border_title = "related tasks"
        self._ready = True
        if self._pending is not None:  # the detail arrived before the screen was built
            pending, self._pending = self._pending, None
            detail, at = pending
            if detail is None or at is None:
                self.show_missing()
            else:
                self.show(detail, at)

    def on_screen_resume(self) -> None:
        # the service keeps one task fresh: this one again, when we come back to it
        self.app.service.watch_task(self.task_id)  # type: ignore[attr-defined]

    def action_back(self) -> None:
        """Back to the board (or the previous task)."""
        self.app.pop_screen()

    def action_tab(self, tab: str) -> None:
        """Switch to a tab."""
        self.query_one(TabbedContent).active = tab

    def show_missing(self) -> None:
        """The task does not exist (any more)."""
        if not self._ready:
            self._pending = (None, None)
            return
        self.query_one("#task-title", Static).update(f"#{self.task_id}: no such task")

    def show(self, d: model.TaskDetail, now: dt.datetime) -> None:
        """Render the task's detail; transcript and messages append what is new."""
        if not self._ready:
            self._pending = (d, now)
            return
        first = self.detail is None
        self.detail = d
        t = d.task
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(f"#{t['id']} ", style="dim")
        title.append(str(t["title"]))
        if t.get("parent_id"):
            title.append(f"  (subtask of #{t['parent_id']})", style="dim")
        self.query_one("#task-title", Static).update(title)
        self.query_one("#task-summary", Static).update(summary_line(d))
        self.query_one("#overview-text", Static).update(overview(d, now))
        self._show_related(d)
        self._show_steps(d, now, first)
        self._show_messages(d, now, first)
        log = self.query_one("#activity-log", RichLog)
        log.clear()
        for a in d.activities:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(fmt.clock_time(a.created_at, now), style="dim")
            line.append(f" {a.kind} ", style="bold")
            line.append(a.actor or "-", style="cyan")
            line.append(f" {fmt.one_line(a.message, 300)}")
            log.write(line)
        tabs = self.query_one(TabbedContent)
        tabs.get_tab("transcript").label = f"2 Transcript {d.step_total}"
        tabs.get_tab("messages").label = f"3 Messages {len(d.messages)}"

    def _show_related(self, d: model.TaskDetail) -> None:
        related = self.query_one("#related", OptionList)
        keep = related.highlighted
        options: list[Option] = []
        for label, refs in (
            ("waits for", d.depends_on),
            ("blocks", d.dependents),
            ("subtask", d.subtasks),
        ):
            for r in refs:
                line = Text(no_wrap=True, overflow="ellipsis")
                line.append(f"{label:<9} ", style="dim")
                line.append(f"#{r.id} ", style="dim")
                line.append(r.status, style=STATUS_STYLE.get(r.status, ""))
                line.append(f" {r.title}")
                options.append(Option(line, id=f"{label}-{r.id}"))
        if d.subtask_total > len(d.subtasks):
            options.append(
                Option(Text(f"… {d.subtask_total - len(d.subtasks)} more subtasks"), disabled=True)
            )
        related.set_options(options)
        related.display = bool(options)
        if options:
            related.highlighted = min(keep or 0, len(options) - 1)

    def _show_steps(self, d: model.TaskDetail, now: dt.datetime, first: bool) -> None:
        log = self.query_one("#steps", RichLog)
        if first:
            log.clear()
            hidden = d.step_total - len(d.steps)
            if hidden > 0:
                log.write(Text(f"… {hidden} earlier steps not shown", style="dim"))
            if not d.steps:
                log.write(Text("no steps yet: the agent's transcript appears here", style="dim"))
        elif d.steps and self._last_step == 0:
            log.clear()  # the placeholder goes
        for step in d.steps:
            if step.id > self._last_step:
                log.write(step_renderable(step, now))
                self._last_step = step.id

    def _show_messages(self, d: model.TaskDetail, now: dt.datetime, first: bool) -> None:
        log = self.query_one("#message-log", RichLog)
        if first:
            log.clear()
            if not d.messages:
                log.write(Text("no messages (m sends one)", style="dim"))
        elif d.messages and self._last_message == 0:
            log.clear()
        for m in d.messages:
            if m.id <= self._last_message:
                continue
            head = Text(no_wrap=True, overflow="ellipsis")
            head.append(fmt.clock_time(m.created_at, now), style="dim")
            head.append(f" {m.from_agent or '-'}", style="cyan")
            head.append(" → ", style="dim")
            head.append(m.to_agent or "task", style="cyan")
            head.append(f" [{m.kind}]", style="dim")
            log.write(Group(head, Padding(Text(m.body), (0, 0, 0, 4))))
            self._last_message = m.id

    @on(OptionList.OptionSelected, "#related")
    def _open_related(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_id:
            self.app.open_task(int(event.option_id.rsplit("-", 1)[1]))  # type: ignore[attr-defined]
