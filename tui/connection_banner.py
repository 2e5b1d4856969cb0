"""The banner shown while the database is unreachable."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class ConnectionBanner(Static):
    """Hidden while connected; says what broke while mission control reconnects."""

    DEFAULT_CSS = """
    ConnectionBanner {
        dock: top;
        height: 1;
        width: 100%;
        display: none;
        background: $error;
        color: $text;
        text-style: bold;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        padding: 0 1;
    }
    ConnectionBanner.-offline {
        display: block;
    }
    """

    def set_state(self, online: bool, detail: str = "") -> None:
        """Show the banner with detail when offline, hide it when online."""
        self.set_class(not online, "-offline")
        if not online:
            why = f" ({detail})" if detail else ""
            # plain Text: the detail is a server's error message, never markup
            self.update(Text(f"⚠ database unreachable{why}: reconnecting, the screen may be stale"))

    @property
    def offline(self) -> bool:
        """Whether the banner is showing."""
        return self.has_class("-offline")
