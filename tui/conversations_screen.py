"""`t`: the person's conversations: their inbox, each agent, each channel, each task's
thread, with unread counts; the selected one's messages, live. `m` writes in it.

What is shown is read: the screen marks the person's unread messages of the selected
conversation read (one receipt each, kernel.messages.mark_read), and keeps them marked
new until another conversation is chosen, so a reader sees what arrived.
"""

from __future__ import annotations

import datetime as dt

from agentos.tui import fmt, model
from agentos.tui.connection_banner import ConnectionBanner
from rich.console import Group
from rich.padding import Padding
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, OptionList, RichLog, Static
from textual.widgets.option_list import Option

_SECTION = {"channel": "channels", "agent": "agents", "task": "tasks"}


def ref_prompt(ref: model.ConversationRef) -> Text:
    """One line of the list: the name, what it is, its unread count."""
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(ref.title, style="bold" if ref.unread else "")
    if ref.unread:
        t.append(f" {ref.unread}", style="bold reverse yellow")
    if ref.detail:
        t.append(f"  {ref.detail}", style="dim")
    return t


def where(m: model.ConversationMessage) -> str:
    """Who or what a message went to."""
    parts = [m.to_agent] if m.to_agent else []
    if m.channel:
        parts.append(f"#{m.channel}")
    elif m.task_id is not None:
        parts.append(f"task #{m.task_id}")
    return " on ".join(parts) if parts else "everyone"


def message_renderable(m: model.ConversationMessage, now: dt.datetime, new: bool) -> Group:
    """A header line (time, who to whom, kind, what it answers) and the text."""
    head = Text(no_wrap=True, overflow="ellipsis")
    head.append("● " if new else "  ", style="bold yellow")  # new: unread when first shown
    head.append(fmt.clock_time(m.created_at, now), style="dim")
    head.append(f" {m.from_agent or '-'}", style="cyan")
    head.append(" → ", style="dim")
    head.append(where(m), style="cyan")
    head.append(f" · {m.kind}{f' re #{m.reply_to}' if m.reply_to else ''} · #{m.id}", style="dim")
    return Group(head, Padding(Text(m.body), (0, 0, 0, 4)))


class ConversationsScreen(Screen[None]):
    """Conversations on the left, the selected one's messages on the right."""

    DEFAULT_CSS = """
    ConversationsScreen #conv-title {
        height: 1;
        background: $panel;
        text-style: bold;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        padding: 0 1;
    }
    ConversationsScreen #conv-body {
        height: 1fr;
    }
    ConversationsScreen #conv-list {
        width: 28;
        max-width: 40%;
        height: 1fr;
        border: none;
        border-right: vkey $surface-lighten-2;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    ConversationsScreen #conv-log {
        width: 1fr;
        height: 1fr;
        background: $surface;
        padding: 0 1;
    }
    """

    BINDINGS = [
        Binding("escape,backspace", "back", "Back", show=True),
        Binding("tab", "app.focus_next", "Next panel", show=False),
    ]

    def __init__(self, selected: str = "inbox") -> None:
        super().__init__()
        self.selected = selected
        self.data: model.Conversations | None = None
        self._new: set[int] = set()  # unread when first shown here: marked new meanwhile
        self._marking: set[int] = set()

    def compose(self) -> ComposeResult:
        yield ConnectionBanner()
        yield Static("conversations · loading…", id="conv-title")
        with Horizontal(id="conv-body"):
            yield OptionList(id="conv-list")
            yield RichLog(id="conv-log", wrap=True, min_width=20, auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#conv-list", OptionList).focus()
        self.app.service.watch_conversation(self.selected)  # type: ignore[attr-defined]

    def on_screen_resume(self) -> None:
        self.app.service.watch_conversation(self.selected)  # type: ignore[attr-defined]

    def action_back(self) -> None:
        """Back to where `t` was pressed."""
        self.app.pop_screen()

    def selected_ref(self) -> model.ConversationRef | None:
        """The highlighted conversation."""
        if self.data is None:
            return None
        return next((r for r in self.data.refs if r.key == self.selected), None)

    def show(self, data: model.Conversations, now: dt.datetime) -> None:
        """Render a snapshot (the list, and the selected conversation's messages)."""
        if data.selected != self.selected:
            return  # a snapshot of the conversation before: the next one is on its way
        self.data = data
        total = next((r.unread for r in data.refs if r.key == "inbox"), 0)
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(f"conversations · {data.reader}")
        title.append(f" · {total} unread" if total else " · nothing unread", style="dim")
        self.query_one("#conv-title", Static).update(title)
        self._show_list(data)
        log = self.query_one("#conv-log", RichLog)
        log.clear()
        if not data.messages:
            log.write(Text("no messages here yet (m writes one)", style="dim"))
        fresh = [m.id for m in data.messages if m.new]
        self._new.update(fresh)
        for m in data.messages:
            log.write(message_renderable(m, now, m.id in self._new))
        unmarked = [i for i in fresh if i not in self._marking]
        if unmarked:
            self._marking.update(unmarked)
            self.app.mark_read(unmarked)  # type: ignore[attr-defined]

    def _show_list(self, data: model.Conversations) -> None:
        lst = self.query_one("#conv-list", OptionList)
        options: list[Option | None] = []
        section = ""
        for ref in data.refs:
            name = _SECTION.get(ref.kind, "")
            if name and name != section:
                section = name
                options.append(None)  # a separator before each section
            options.append(Option(ref_prompt(ref), id=ref.key))
        keep = self.selected
        lst.clear_options()
        lst.add_options(options)
        with self.prevent(OptionList.OptionHighlighted):
            try:
                lst.highlighted = lst.get_option_index(keep)
            except Exception:
                lst.highlighted = 0

    @on(OptionList.OptionHighlighted, "#conv-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        key = event.option.id
        if key and key != self.selected:
            self.selected = key
            self._new.clear()
            self._marking.clear()
            log = self.query_one("#conv-log", RichLog)
            log.clear()
            log.write(Text("loading…", style="dim"))
            self.app.service.watch_conversation(key)  # type: ignore[attr-defined]
