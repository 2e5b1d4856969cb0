"""Every key of mission control, in one table: the help screen and the README use it."""

from __future__ import annotations

KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Move",
        (
            ("← → or h l", "previous / next board column"),
            ("↑ ↓ or j k", "previous / next card or row"),
            ("1 … 7", "jump to a board column"),
            ("a / f", "jump to the agents panel / the activity feed"),
            ("tab, shift+tab", "next / previous panel"),
            ("enter", "open the task (a card, an agent's task, an activity's task)"),
            ("z", "maximise the focused panel, or restore it"),
        ),
    ),
    (
        "Act",
        (
            ("n", "new task: title, description, acceptance, role, priority"),
            ("y", "approve a held merge (shown first), or a new budget"),
            ("x", "reject a task in approval, with feedback for its worker"),
            ("c", "cancel the selected task (asks first)"),
            ("r", "retry the selected blocked, failed or cancelled task"),
            ("b", "raise the selected task's budget (a blocked task is retried)"),
            ("m", "message the selected agent, or the selected task's holder"),
            ("t", "conversations: inbox, agents, channels, tasks' threads"),
        ),
    ),
    (
        "View",
        (
            ("/", "filter board and feed: title, agent, role, kind, #id"),
            ("escape", "clear the filter; close a form or screen"),
            ("ctrl+r", "re-read everything now"),
            ("?", "this list of keys"),
            ("q", "quit"),
        ),
    ),
    (
        "Task screen",
        (
            ("1 … 4", "overview, transcript, messages, activity"),
            ("enter", "open the highlighted related task (overview)"),
            ("y x c r b m", "approve, reject, cancel, retry, raise budget, message: this task"),
            ("escape", "back"),
        ),
    ),
    (
        "Conversations",
        (
            ("↑ ↓", "choose a conversation; its messages show on the right"),
            ("m", "write in it (to the agent, the channel or the task)"),
            ("escape", "back"),
        ),
    ),
    (
        "Forms",
        (
            ("tab, shift+tab", "next / previous field"),
            ("ctrl+s", "submit"),
            ("escape", "close without saving"),
        ),
    ),
)
