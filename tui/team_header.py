"""The header line: who is online, what is queued, what waits for a person, what got
done and spent today."""

from __future__ import annotations

import datetime as dt

from agentos.tui import fmt, model
from rich.text import Text
from textual.widgets import Static


class TeamHeader(Static):
    """One line: AgentOS · agents online/registered · unread messages · queue by role ·
    done · spend · time."""

    DEFAULT_CSS = """
    TeamHeader {
        dock: top;
        height: 1;
        width: 100%;
        background: $panel;
        color: $foreground;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.stats: model.HeaderStats | None = None
        self.filter: str | None = None
        self.now: dt.datetime | None = None

    def show(self, stats: model.HeaderStats | None, now: dt.datetime) -> None:
        """Render the latest stats at `now`."""
        if stats is not None:
            self.stats = stats
        self.now = now
        self.update(self.header_text())

    def header_text(self) -> Text:
        """The header as rich Text (also used by tests)."""
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" AgentOS ", style="bold reverse")
        s = self.stats
        if s is None:
            t.append("  connecting…", style="dim")
        else:
            dot = "green" if s.online else ("yellow" if s.registered else "dim")
            t.append(" ● ", style=dot)
            t.append(f"{s.online}/{s.registered}", style="bold")
            t.append(" agents", style="dim")
            if s.unread:
                t.append(" │ ", style="dim")
                t.append(f"✉ {s.unread}", style="bold yellow")  # unread messages
            t.append(" │ ", style="dim")
            busy = [q for q in s.queues if q.ready or q.waiting]
            if not busy:
                t.append("queue empty", style="dim")
            for i, q in enumerate(busy):
                if i:
                    t.append(" · ", style="dim")
                t.append(f"{q.role} ", style="dim")
                t.append(str(q.ready), style="bold")
                if q.waiting:
                    t.append(f"+{q.waiting}", style="dim")
            if s.awaiting:  # a held merge or a spent budget: a person's turn
                t.append(" │ ", style="dim")
                t.append(f"{s.awaiting} waiting for you", style="bold yellow")
            t.append(" │ today ", style="dim")
            t.append(fmt.count(s.done_today), style="bold green")
            t.append(" done ", style="dim")
            t.append(fmt.money(s.spend_today), style="bold")
        if self.now is not None:
            t.append(f" │ {self.now:%H:%M}", style="dim")
        return t
