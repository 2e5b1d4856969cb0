"""The activity feed: the audit log, newest first, streaming live."""

from __future__ import annotations

import datetime as dt

from agentos.tui import fmt, model
from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

KIND_STYLE = {
    "task.created": "cyan",
    "task.done": "bold green",
    "task.review": "magenta",
    "task.in_progress": "green",
    "task.failed": "bold red",
    "task.blocked": "bold yellow",
    "task.cancelled": "dim",
    "message.sent": "blue",
}


def activity_prompt(row: model.ActivityRow, now: dt.datetime) -> Text:
    """One line: time, kind, actor, #task, message."""
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(fmt.clock_time(row.created_at, now), style="dim")
    t.append(" ")
    t.append(row.kind, style=KIND_STYLE.get(row.kind, ""))
    t.append(" ")
    t.append(row.actor or "-", style="cyan")
    if row.task_id is not None:
        t.append(f" #{row.task_id}", style="dim")
    t.append(" ")
    t.append(fmt.one_line(row.message, 200))
    return t


class ActivityFeed(OptionList):
    """Newest first; Enter opens the activity's task."""

    DEFAULT_CSS = """
    ActivityFeed {
        width: 1fr;
        height: 100%;
        max-height: 100%;
        border: none;
        border-top: hkey $surface-lighten-2;
        border-title-color: $text-muted;
        border-title-style: bold;
        padding: 0;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        scrollbar-size-vertical: 1;
        background: $surface;
    }
    ActivityFeed:focus {
        border: none;
        border-top: hkey $accent;
        border-title-color: $text;
        background-tint: $foreground 3%;
    }
    ActivityFeed > .option-list--option {
        padding: 0 0 0 1;
    }
    """

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    class OpenTask(Message):
        """Enter on an activity about a task."""

        def __init__(self, task_id: int) -> None:
            super().__init__()
            self.task_id = task_id

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.snapshot: model.Feed | None = None
        self.border_title = "activity"

    def show(self, feed: model.Feed | None, now: dt.datetime) -> None:
        """Render the newest activities; the cursor stays on its row, or on top."""
        if feed is not None:
            if feed == self.snapshot:
                return
            self.snapshot = feed
        snap = self.snapshot
        if snap is None:
            return
        self.border_title = "activity" + (f" matching {snap.filter!r}" if snap.filter else "")
        old = self.highlighted_option
        old_id = old.id if old is not None else None
        at_top = (self.highlighted or 0) == 0
        self.set_options(Option(activity_prompt(r, now), id=f"act-{r.id}") for r in snap.rows)
        if not snap.rows or not self.has_focus:
            return
        index = 0
        if old_id is not None and not at_top:
            try:
                index = self.get_option_index(old_id)
            except Exception:
                index = 0
        self.highlighted = index

    def selected(self) -> model.ActivityRow | None:
        """The highlighted activity."""
        opt = self.highlighted_option
        if opt is None or opt.id is None or self.snapshot is None:
            return None
        aid = int(opt.id.removeprefix("act-"))
        return next((r for r in self.snapshot.rows if r.id == aid), None)

    def ids(self) -> list[int]:
        """Activity ids shown, newest first (tests)."""
        return [r.id for r in self.snapshot.rows] if self.snapshot else []

    def on_focus(self) -> None:
        if self.highlighted is None and self.option_count:
            self.highlighted = 0

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        row = self.selected()
        if row is not None and row.task_id is not None:
            self.post_message(self.OpenTask(row.task_id))
