"""The filter line (`/`): narrows the board and the feed as you type."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Label


class FilterBar(Horizontal):
    """Shown while typing a filter or while one is active; escape clears it."""

    DEFAULT_CSS = """
    FilterBar {
        dock: bottom;
        height: 1;
        display: none;
        background: $panel;
    }
    FilterBar.-active {
        display: block;
    }
    FilterBar Label {
        width: auto;
        padding: 0 1;
        color: $accent;
        text-style: bold;
    }
    FilterBar Input {
        width: 1fr;
    }
    """

    BINDINGS = [Binding("escape", "clear", "Clear filter", show=False)]

    class Changed(Message):
        """The filter text settled (debounced)."""

        def __init__(self, value: str) -> None:
            super().__init__()
            self.value = value

    class Done(Message):
        """Enter or escape: give the focus back to the board."""

    def __init__(self, *, id: str | None = None, debounce: float = 0.2) -> None:
        super().__init__(id=id)
        self.debounce = debounce
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Label("filter /")
        yield Input(placeholder="title, agent, role, kind or #id", compact=True)

    @property
    def input(self) -> Input:
        """The text field."""
        return self.query_one(Input)

    @property
    def value(self) -> str:
        """The current filter text."""
        return self.input.value.strip()

    def open(self) -> None:
        """Show the bar and focus its field."""
        self.add_class("-active")
        self.input.focus()

    def action_clear(self) -> None:
        """Clear the filter and hide the bar."""
        self.input.value = ""
        self._fire()
        self.remove_class("-active")
        self.post_message(self.Done())

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self.debounce, self._fire)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._fire()
        if not self.value:
            self.remove_class("-active")
        self.post_message(self.Done())

    def _fire(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.post_message(self.Changed(self.value))
