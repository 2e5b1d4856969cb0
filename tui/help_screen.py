"""`?`: every key, from keys.KEYS."""

from __future__ import annotations

from agentos.tui.keys import KEYS
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


def keys_table() -> Table:
    """The keys as a rich Table."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for i, (section, rows) in enumerate(KEYS):
        if i:
            table.add_row("", "")
        table.add_row(Text(section, style="bold underline"), "")
        for key, what in rows:
            table.add_row(key, what)
    return table


class HelpScreen(ModalScreen[None]):
    """A scrollable list of every key; any of escape, ? or q closes it."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 84;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: round $accent;
        border-title-style: bold;
        background: $surface;
        padding: 0 1;
    }
    HelpScreen Static {
        width: 100%;
        height: auto;
    }
    """

    BINDINGS = [
        Binding("escape,question_mark,q", "app.pop_screen", "Close", show=True),
        # a modal screen hides the App's own ctrl+c; nothing here is selectable to copy
        Binding("ctrl+c", "app.quit", "Quit", show=False),
    ]

    def compose(self) -> ComposeResult:
        box = VerticalScroll()
        box.border_title = "keys"
        box.border_subtitle = "escape closes"
        with box:
            yield Static(keys_table())
