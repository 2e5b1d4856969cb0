"""The agents panel: role, status (idle, working, offline, dead), task, heartbeat, spend."""

from __future__ import annotations

import datetime as dt

from agentos.tui import fmt, model
from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

STATUS_STYLE = {
    "working": "bold green",
    "idle": "cyan",
    "offline": "dim",
    "dead": "bold red",
}


class AgentsPanel(DataTable[Text]):
    """A table of agents; Enter opens the agent's current task."""

    DEFAULT_CSS = """
    AgentsPanel {
        width: 1fr;
        max-width: 62;
        height: 100%;
        border: none;
        border-top: hkey $surface-lighten-2;
        border-title-color: $text-muted;
        border-title-style: bold;
        scrollbar-size: 1 1;
        background: $surface;
    }
    AgentsPanel:focus {
        border: none;
        border-top: hkey $accent;
        border-title-color: $text;
        background-tint: $foreground 3%;
    }
    """

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    class OpenTask(Message):
        """Enter on an agent that works on a task."""

        def __init__(self, task_id: int) -> None:
            super().__init__()
            self.task_id = task_id

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, show_cursor=True)
        self.snapshot: model.Agents | None = None
        self.border_title = "agents"

    def on_mount(self) -> None:
        # role last: at 80 columns the first columns are what fits, and matter most
        for label, key, width in (
            ("agent", "name", 10),
            ("status", "status", 7),
            ("beat", "beat", 4),
            ("task", "task", 20),
            ("$ today", "spend", 7),
            ("role", "role", 12),
        ):
            self.add_column(label, key=key, width=width)

    def show(self, agents: model.Agents | None, now: dt.datetime) -> None:
        """Render the agents (keeping the cursor on the same agent)."""
        if agents is not None:
            self.snapshot = agents
        snap = self.snapshot
        if snap is None:
            return
        self.border_title = f"agents {len(snap.rows)}" + (
            f" of {snap.total}" if snap.total > len(snap.rows) else ""
        )
        keep = self.selected_agent()
        row_index = self.cursor_row
        self.clear()
        for a in snap.rows:
            task = Text("-", style="dim")
            if a.current_task_id is not None:
                task = Text(
                    f"#{a.current_task_id} {fmt.one_line(a.current_task, 40)}",
                    no_wrap=True,
                    overflow="ellipsis",
                )
            self.add_row(
                Text(a.name, style="bold", no_wrap=True, overflow="ellipsis"),
                Text(a.status, style=STATUS_STYLE.get(a.status, "")),
                Text(fmt.age(a.last_heartbeat, now), style="dim"),
                task,
                Text(fmt.money(a.spend_today), justify="right"),
                Text(a.role, style="dim"),
                key=a.name,
            )
        if not snap.rows:
            return
        target = row_index
        if keep is not None:
            for i, a in enumerate(snap.rows):
                if a.name == keep.name:
                    target = i
        self.move_cursor(row=max(0, min(target, len(snap.rows) - 1)), animate=False)

    def selected_agent(self) -> model.AgentRow | None:
        """The agent under the cursor."""
        if self.snapshot is None or not self.snapshot.rows or self.row_count == 0:
            return None
        i = self.cursor_row
        if 0 <= i < len(self.snapshot.rows):
            return self.snapshot.rows[i]
        return None

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        agent = self.selected_agent()
        if agent is not None and agent.current_task_id is not None:
            self.post_message(self.OpenTask(agent.current_task_id))
