"""One column of the board: a title with its count, and the first cards of its tasks."""

from __future__ import annotations

import datetime as dt

from agentos.tui import fmt, model
from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

STATUS_STYLE = {
    "blocked": "bold yellow",
    "failed": "bold red",
    "cancelled": "dim",
}


def card_prompt(card: model.Card, now: dt.datetime, column: str) -> Text:
    """Two lines: `#id title`, then `assignee · age` (and what needs saying)."""
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(f"#{card.id} ", style="dim")
    t.append(card.title, style="bold" if card.priority > 0 else "")
    t.append("\n")
    if column == "stuck":
        t.append(card.status, style=STATUS_STYLE.get(card.status, ""))
        t.append(" · ", style="dim")
    elif column == "approval":
        t.append("waits for you", style="bold yellow")
        t.append(" · ", style="dim")
    t.append(card.assignee or card.role, style="cyan" if card.assignee else "dim")
    t.append(f" · {fmt.age(card.created_at, now)}", style="dim")
    if card.priority:
        t.append(f" p{card.priority}", style="magenta" if card.priority > 0 else "dim")
    if card.attempts > 1 and column in ("inbox", "assigned", "in_progress"):
        t.append(f" try {card.attempts}/{card.max_attempts}", style="yellow")
    return t


class CardList(OptionList):
    """The cards; left/right move to the neighbouring column, the last card loads more."""

    BINDINGS = [
        Binding("left,h", "column(-1)", "Column left", show=False),
        Binding("right,l", "column(1)", "Column right", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "first", "First", show=False),
        Binding("G", "last", "Last", show=False),
    ]

    class Move(Message):
        """Ask the board to focus the column `step` places away."""

        def __init__(self, step: int) -> None:
            super().__init__()
            self.step = step

    def action_column(self, step: int) -> None:
        """Focus the neighbouring column."""
        self.post_message(self.Move(step))


class BoardColumn(Vertical):
    """A titled column of task cards."""

    ALLOW_MAXIMIZE = True  # `z` zooms the column, title and count included

    DEFAULT_CSS = """
    BoardColumn {
        width: 1fr;
        height: 100%;
        border-top: hkey $surface-lighten-2;
        border-title-color: $text-muted;
        border-title-style: bold;
        padding: 0;
        margin: 0 0 0 0;
    }
    BoardColumn:focus-within {
        border-top: hkey $accent;
        border-title-color: $text;
    }
    BoardColumn CardList {
        height: 1fr;
        border: none;
        padding: 0;
        background: $surface;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        scrollbar-size-vertical: 1;
    }
    BoardColumn CardList:focus {
        border: none;
        background-tint: $foreground 3%;
    }
    BoardColumn CardList > .option-list--option {
        padding: 0 0 0 1;
    }
    BoardColumn.-stuck {
        border-title-color: $warning;
    }
    """

    def __init__(self, key: str, title: str, short: str | None = None) -> None:
        super().__init__(id=f"col-{key}", classes=f"-{key}")
        self.key = key
        self.title = title
        self.short = short or title
        self.column: model.Column | None = None
        self.border_title = title

    def compose(self):  # type: ignore[no-untyped-def]
        yield CardList(id=f"cards-{self.key}")

    @property
    def cards(self) -> CardList:
        """The focusable list of cards."""
        return self.query_one(CardList)

    def show(self, column: model.Column, now: dt.datetime) -> None:
        """Replace the cards, keeping the highlighted task (or its position) and scroll."""
        self.column = column
        self._set_title()
        cards = self.cards
        old = cards.highlighted_option
        old_id = old.id if old is not None else None
        old_index = cards.highlighted
        scroll_y = cards.scroll_y
        options: list[Option] = [
            Option(card_prompt(c, now, self.key), id=f"task-{c.id}") for c in column.cards
        ]
        more = column.total - len(column.cards)
        if more > 0:
            options.append(Option(Text(f"… {fmt.count(more)} more", style="dim"), disabled=True))
        with self.app.batch_update():
            cards.set_options(options)
            if options and old_index is not None:
                index = old_index
                if old_id is not None:
                    try:
                        index = cards.get_option_index(old_id)
                    except Exception:
                        index = min(old_index, len(column.cards) - 1)
                cards.highlighted = (
                    max(0, min(index, len(column.cards) - 1)) if column.cards else None
                )
            elif column.cards and cards.has_focus:
                cards.highlighted = 0
            cards.scroll_to(y=scroll_y, animate=False, immediate=True)
            if cards.highlighted is not None:
                cards.scroll_to_highlight()

    def _set_title(self) -> None:
        total = fmt.count(self.column.total) if self.column is not None else ""
        title = f"{self.title} {total}".strip()
        if self.size.width and len(title) > self.size.width - 2:
            title = f"{self.short} {total}".strip()
        self.border_title = title

    def on_resize(self) -> None:
        self._set_title()

    def selected_task_id(self) -> int | None:
        """The highlighted card's task id."""
        opt = self.cards.highlighted_option
        if opt is None or opt.id is None or not opt.id.startswith("task-"):
            return None
        return int(opt.id.removeprefix("task-"))

    def selected_card(self) -> model.Card | None:
        """The highlighted card."""
        tid = self.selected_task_id()
        if tid is None or self.column is None:
            return None
        return next((c for c in self.column.cards if c.id == tid), None)
