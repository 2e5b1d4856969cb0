"""The board: seven columns (inbox, assigned, in progress, review, approval, done,
blocked/failed)."""

from __future__ import annotations

import datetime as dt

from agentos.tui import model
from agentos.tui.board_column import BoardColumn, CardList
from textual import on
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import OptionList


class Board(Horizontal):
    """The task board; keyboard: left/right between columns, up/down between cards."""

    DEFAULT_CSS = """
    Board {
        height: 1fr;
        min-height: 6;
        width: 100%;
    }
    """

    class OpenTask(Message):
        """Enter on a card."""

        def __init__(self, task_id: int) -> None:
            super().__init__()
            self.task_id = task_id

    class NeedMore(Message):
        """The cursor reached the last loaded card of a column that has more."""

        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.snapshot: model.Board | None = None
        self._asked: dict[str, int] = {}

    def compose(self):  # type: ignore[no-untyped-def]
        for key, title, short, _ in model.COLUMNS:
            yield BoardColumn(key, title, short)

    @property
    def columns(self) -> list[BoardColumn]:
        """The columns, left to right."""
        return list(self.query(BoardColumn))

    def show(self, board: model.Board, now: dt.datetime) -> None:
        """Render a board snapshot."""
        self.snapshot = board
        self._asked = {}
        for col, data in zip(self.columns, board.columns, strict=True):
            if col.column != data:  # most notifications change one or two columns
                col.show(data, now)

    def retick(self, now: dt.datetime) -> None:
        """Re-render ages at `now` (no query)."""
        if self.snapshot is not None:
            for col, data in zip(self.columns, self.snapshot.columns, strict=True):
                col.show(data, now)

    def focus_column(self, index: int) -> None:
        """Focus column index (0-based), clamped."""
        cols = self.columns
        col = cols[max(0, min(index, len(cols) - 1))]
        col.cards.focus(scroll_visible=False)
        if col.cards.highlighted is None and col.column and col.column.cards:
            col.cards.highlighted = 0

    def current_column(self) -> BoardColumn | None:
        """The column holding the focus, if any."""
        focused = self.app.focused
        for col in self.columns:
            if focused is not None and focused is col.cards:
                return col
        return None

    def selected_card(self) -> model.Card | None:
        """The highlighted card of the focused column."""
        col = self.current_column()
        return col.selected_card() if col else None

    def card_ids(self, key: str) -> list[int]:
        """Task ids shown in a column (tests)."""
        for col in self.columns:
            if col.key == key and col.column is not None:
                return [c.id for c in col.column.cards]
        return []

    @on(CardList.Move)
    def _move(self, event: CardList.Move) -> None:
        event.stop()
        col = self.current_column()
        if col is None:
            return
        index = self.columns.index(col) + event.step
        if 0 <= index < len(self.columns):
            # keep the row: the same card position in the next column
            row = col.cards.highlighted or 0
            target = self.columns[index]
            target.cards.focus(scroll_visible=False)
            if target.column and target.column.cards:
                target.cards.highlighted = min(row, len(target.column.cards) - 1)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_id and event.option_id.startswith("task-"):
            self.post_message(self.OpenTask(int(event.option_id.removeprefix("task-"))))

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        for col in self.columns:
            if event.option_list is col.cards and col.column is not None:
                loaded = len(col.column.cards)
                if (
                    col.column.total > loaded
                    and event.option_index >= loaded - 3
                    and self._asked.get(col.key) != loaded
                ):
                    self._asked[col.key] = loaded
                    self.post_message(self.NeedMore(col.key))
