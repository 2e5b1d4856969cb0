"""MissionControl: the App. Routes snapshots from the service to widgets, keys to actions.

The App never touches the database. The service (service.py) runs in a Textual thread
worker with its own event loop; its snapshots arrive here as `Snapshot` messages, and
actions go to it through `call_service`, awaited by async workers, so the UI loop only
renders.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from agentos.kernel import approvals
from agentos.kernel.errors import KernelError
from agentos.kernel.models import Task
from agentos.kernel.settings import Settings
from agentos.tui import fmt, model
from agentos.tui.activity_feed import ActivityFeed
from agentos.tui.agents_panel import AgentsPanel
from agentos.tui.board import Board
from agentos.tui.budget_form import BudgetForm
from agentos.tui.clock import Clock
from agentos.tui.confirm_screen import ConfirmScreen
from agentos.tui.connection_banner import ConnectionBanner
from agentos.tui.conversations_screen import ConversationsScreen
from agentos.tui.decision_screens import ApproveScreen, RejectForm
from agentos.tui.filter_bar import FilterBar
from agentos.tui.help_screen import HelpScreen
from agentos.tui.message_form import MessageForm
from agentos.tui.new_task_form import NewTaskForm
from agentos.tui.service import TeamService, Topic
from agentos.tui.task_screen import TaskScreen
from agentos.tui.team_header import TeamHeader
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Footer

T = TypeVar("T")


# Actions of MissionControl's own BINDINGS (check_action gates only these).
_BOARD_ACTIONS = frozenset({"filter", "zoom", "column", "focus_agents", "focus_feed"})
_OWN_ACTIONS = _BOARD_ACTIONS | {
    "help",
    "new_task",
    "cancel_task",
    "retry_task",
    "raise_budget",
    "approve_task",
    "reject_task",
    "message",
    "conversations",
    "resync",
    "quit_here",
}


def _approved(task: Task) -> str:
    """What a merge approved from mission control says (as `agentos task approve`)."""
    merged = str(task.metadata.get("merged") or "")
    return (
        f"task #{task.id} is now {task.status}: merged into "
        f"{task.metadata.get('base_branch')} ({merged[:12]})"
    )


class Snapshot(Message):
    """A snapshot (or connection state) from the service thread."""

    def __init__(self, item: object) -> None:
        super().__init__()
        self.item = item


class MissionControl(App[None]):
    """`agentos tui`: agents, board, live activity, task detail and actions."""

    TITLE = "AgentOS mission control"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS = [
        # q is a letter in a form (even on its buttons), so it quits only from the
        # screens; ctrl+q (Textual's) and ctrl+c quit from anywhere. Textual's ctrl+c only
        # says "press ctrl+q"; here it quits, unless a field or a selection copies first
        Binding("q", "quit_here", "Quit", show=False),
        Binding("ctrl+c", "quit", "Quit", show=False),
        Binding("question_mark", "help", "Keys", show=True),
        Binding("n", "new_task", "New", show=True),
        # what waits for a person (the approval column, a spent budget): decided here
        Binding("y", "approve_task", "Approve", show=True),
        Binding("x", "reject_task", "Reject", show=True),
        Binding("c", "cancel_task", "Cancel", show=True),
        Binding("r", "retry_task", "Retry", show=True),
        Binding("b", "raise_budget", "Budget", show=True),
        Binding("m", "message", "Msg", show=True),
        Binding("t", "conversations", "Talk", show=True),
        Binding("slash", "filter", "Filter", show=True),
        Binding("z", "zoom", "Zoom", show=False),
        Binding("ctrl+r", "resync", "Re-read", show=False),
        Binding("a", "focus_agents", "Agents", show=False),
        Binding("f", "focus_feed", "Activity", show=False),
        *(
            Binding(str(i + 1), f"column({i})", f"Column {i + 1}", show=False)
            for i in range(len(model.COLUMNS))
        ),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        url: str | None = None,
        clock: Clock | None = None,
        actor: str | None = None,
        resync_interval: float = 30.0,
        tick_interval: float = 10.0,
        initial_filter: str | None = None,
        open_task: int | None = None,
        service_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.service = TeamService(
            settings,
            sink=self._receive,
            url=url,
            clock=clock,
            actor=actor,
            resync_interval=resync_interval,
            **(service_options or {}),
        )
        self.tick_interval = tick_interval
        self.initial_filter = initial_filter
        self.initial_task = open_task
        self.applied = 0  # snapshots handled: tests wait for applied == service.loads
        self.online: bool | None = None
        self.header_stats: model.HeaderStats | None = None
        self.board_observers: list[Callable[[model.Board], None]] = []

    # ---------------------------------------------------------------- layout --

    def compose(self) -> ComposeResult:
        yield TeamHeader(id="header")
        yield ConnectionBanner(id="banner")
        yield Board(id="board")
        with Horizontal(id="lower"):
            yield AgentsPanel(id="agents")
            yield ActivityFeed(id="feed")
        yield FilterBar(id="filter")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one(TeamHeader).show(None, self.service.now())
        self.run_worker(
            self.service.run,
            thread=True,
            name="mission-control-db",
            group="db",
            exit_on_error=False,
        )
        if self.initial_filter:
            self.service.set_filter(self.initial_filter)
            bar = self.query_one(FilterBar)
            bar.input.value = self.initial_filter
            bar.add_class("-active")
        self.query_one(Board).focus_column(0)
        if self.initial_task is not None:
            self.open_task(self.initial_task)
        if self.tick_interval:
            self.set_interval(self.tick_interval, self._tick)

    async def on_unmount(self) -> None:
        self.service.stop()
        await asyncio.to_thread(self.service.join, 5.0)

    # ------------------------------------------------------------- snapshots --

    def _receive(self, item: object) -> None:
        """Called on the service thread: hand the snapshot to the UI loop."""
        self.post_message(Snapshot(item))

    def on_snapshot(self, message: Snapshot) -> None:
        item = message.item
        now = self.service.now()
        try:
            if isinstance(item, model.Connection):
                self._connection(item)
            elif isinstance(item, model.HeaderStats):
                self.header_stats = item
                self.query_one(TeamHeader).show(item, now)
            elif isinstance(item, model.Agents):
                self.query_one(AgentsPanel).show(item, now)
            elif isinstance(item, model.Board):
                self.query_one(Board).show(item, now)
                for observer in list(self.board_observers):
                    observer(item)
            elif isinstance(item, model.Feed):
                self.query_one(ActivityFeed).show(item, now)
            elif isinstance(item, model.Conversations):
                for screen in self.screen_stack:
                    if isinstance(screen, ConversationsScreen):
                        screen.show(item, now)
            elif isinstance(item, model.TaskDetail | model.TaskMissing):
                tid = item.task["id"] if isinstance(item, model.TaskDetail) else item.task_id
                for screen in self.screen_stack:
                    if isinstance(screen, TaskScreen) and screen.task_id == tid:
                        if isinstance(item, model.TaskDetail):
                            screen.show(item, now)
                        else:
                            screen.show_missing()
        except NoMatches:
            pass  # a snapshot that arrives while its screen (or the app) is closing
        finally:
            self.applied += 1

    def _connection(self, state: model.Connection) -> None:
        was = self.online
        self.online = state.online
        for screen in self.screen_stack:
            for banner in screen.query(ConnectionBanner):
                banner.set_state(state.online, state.detail)
        if state.online and was is False:
            self.notify("reconnected to the database", timeout=3)
        elif not state.online and state.detail.startswith("could not load"):
            self.notify(state.detail, severity="error", timeout=8)

    def _tick(self) -> None:
        """Re-render ages and the clock (no query)."""
        now = self.service.now()
        self.query_one(TeamHeader).show(None, now)
        self.query_one(Board).retick(now)
        self.query_one(AgentsPanel).show(None, now)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """A toast. Plain text by default: it carries titles, names and kernel messages."""
        super().notify(
            fmt.shown(message), title=title, severity=severity, timeout=timeout, markup=markup
        )

    # --------------------------------------------------------------- service --

    async def call_service(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run fn on the service's loop and wait for it (from an async worker)."""
        return await asyncio.wrap_future(self.service.submit(fn))

    @work(group="actions")
    async def _act(
        self, fn: Callable[[], Coroutine[Any, Any, Any]], done: Callable[[Any], str]
    ) -> None:
        try:
            result = await self.call_service(fn)
        except KernelError as exc:
            self.notify(str(exc).splitlines()[0] or type(exc).__name__, severity="error")
            return
        self.notify(done(result), timeout=4)

    # -------------------------------------------------------------- selection --

    def selected_task(self) -> tuple[int, str | None] | None:
        """The task the keys act on, with its holder: a card, an agent's task, an activity's."""
        screen = self.screen
        if isinstance(screen, TaskScreen):
            holder = screen.detail.task.get("holder") if screen.detail else None
            return screen.task_id, holder
        if isinstance(screen, ConversationsScreen):
            ref = screen.selected_ref()
            if ref is not None and ref.kind == "task":
                return int(ref.key.partition(":")[2]), None
            return None
        focused = self.focused
        agents = self.query_one(AgentsPanel)
        feed = self.query_one(ActivityFeed)
        if focused is agents:
            a = agents.selected_agent()
            return (a.current_task_id, a.name) if a and a.current_task_id else None
        if focused is feed:
            row = feed.selected()
            return (row.task_id, None) if row and row.task_id else None
        card = self.query_one(Board).selected_card()
        return (card.id, card.assignee) if card else None

    def _need_task(self) -> int | None:
        sel = self.selected_task()
        if sel is None:
            self.notify("select a task first (a card, an agent at work, or an activity)")
            return None
        return sel[0]

    def open_task(self, task_id: int) -> None:
        """Push the task screen for task_id."""
        self.service.watch_task(task_id)
        self.push_screen(TaskScreen(task_id))

    def _task_screen_closed(self) -> None:
        if not any(isinstance(s, TaskScreen) for s in self.screen_stack):
            self.service.watch_task(None)

    def pop_screen(self) -> Any:
        result = super().pop_screen()
        self._task_screen_closed()
        if not any(isinstance(s, ConversationsScreen) for s in self.screen_stack):
            self.service.watch_conversation(None)
        return result

    def open_conversations(self, selected: str = "inbox") -> None:
        """Push the conversations screen, on `selected` (inbox, agent:N, channel:N, task:N)."""
        self.push_screen(ConversationsScreen(selected))

    @work(group="reads")
    async def mark_read(self, ids: list[int]) -> None:
        """The person saw these messages on the conversations screen."""
        try:
            await self.call_service(lambda: self.service.mark_read(ids))
        except KernelError as exc:
            self.notify(str(exc).splitlines()[0] or type(exc).__name__, severity="error")

    @on(Board.OpenTask)
    @on(AgentsPanel.OpenTask)
    @on(ActivityFeed.OpenTask)
    def _open(self, event: Board.OpenTask | AgentsPanel.OpenTask | ActivityFeed.OpenTask) -> None:
        event.stop()
        self.open_task(event.task_id)

    @on(Board.NeedMore)
    def _more(self, event: Board.NeedMore) -> None:
        self.service.show_more(event.column)

    @on(FilterBar.Changed)
    def _filter_changed(self, event: FilterBar.Changed) -> None:
        self.service.set_filter(event.value)

    @on(FilterBar.Done)
    def _filter_done(self, event: FilterBar.Done) -> None:
        self.query_one(Board).focus_column(0)

    # ---------------------------------------------------------------- actions --

    async def action_quit_here(self) -> None:
        """Quit (q on the board and the task screen)."""
        await self.action_quit()

    def action_help(self) -> None:
        """Show every key."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_column(self, index: int) -> None:
        """Focus a board column."""
        if not isinstance(self.screen, TaskScreen):
            self.query_one(Board).focus_column(index)

    def action_focus_agents(self) -> None:
        """Focus the agents panel."""
        self.query_one(AgentsPanel).focus()

    def action_focus_feed(self) -> None:
        """Focus the activity feed."""
        self.query_one(ActivityFeed).focus()

    def action_filter(self) -> None:
        """Open the filter line."""
        if not isinstance(self.screen, TaskScreen):
            self.query_one(FilterBar).open()

    def action_zoom(self) -> None:
        """Maximise the focused panel, or restore it."""
        screen = self.screen
        if screen.maximized is not None:
            screen.minimize()
        elif self.focused is not None:
            target = self.focused
            if (target.id or "").startswith("cards-") and isinstance(target.parent, Widget):
                target = target.parent  # the whole column, title included
            screen.maximize(target, container=False)

    def action_resync(self) -> None:
        """Re-read everything now."""
        self.service.refresh()
        self.notify("re-reading everything", timeout=2)

    def action_new_task(self) -> None:
        """Open the new-task form."""
        self._open_new_task()

    @work(group="forms")
    async def _open_new_task(self) -> None:
        try:
            roles = await self.call_service(self.service.role_names)
        except KernelError:
            roles = None
        task: Task | None = await self.push_screen_wait(NewTaskForm(roles))
        if task is not None:
            self.notify(f"created task #{task.id} [{task.status}] {fmt.one_line(task.title, 40)}")

    def action_cancel_task(self) -> None:
        """Cancel the selected task (asks first)."""
        task_id = self._need_task()
        if task_id is not None:
            self._confirm_cancel(task_id)

    @work(group="forms")
    async def _confirm_cancel(self, task_id: int) -> None:
        if await self.push_screen_wait(ConfirmScreen(f"Cancel task #{task_id}?")):
            self._act(
                lambda: self.service.cancel_task(task_id),
                lambda t: f"task #{t.id} is now {t.status}",
            )

    def action_retry_task(self) -> None:
        """Retry the selected blocked, failed or cancelled task."""
        task_id = self._need_task()
        if task_id is not None:
            self._act(
                lambda: self.service.retry_task(task_id),
                lambda t: f"task #{t.id} is now {t.status}",
            )

    def action_raise_budget(self) -> None:
        """Raise the selected task's budget (and retry it when it is stuck)."""
        task_id = self._need_task()
        if task_id is not None:
            self._open_budget(task_id)

    @work(group="forms")
    async def _open_budget(self, task_id: int) -> None:
        try:
            row = await self.call_service(lambda: self.service.task_budget(task_id))
        except KernelError as exc:
            self.notify(str(exc), severity="error")
            return
        if row["status"] == "done":
            self.notify(f"task #{task_id} is done: no budget to raise", severity="warning")
            return
        if row["status"] == "cancelled":
            self.notify(
                f"task #{task_id} is cancelled: retry it (r) before raising its budget",
                severity="warning",
            )
            return
        form = BudgetForm(
            task_id=task_id,
            title=row["title"],
            status=row["status"],
            budget=row["budget_usd"],
            spent=row["spent"],
        )
        task: Task | None = await self.push_screen_wait(form)
        if task is not None:
            self.notify(f"task #{task.id}: budget raised, now {task.status}")

    def action_approve_task(self) -> None:
        """Approve the selected task: merge its held branch (asks first, showing what it
        merges), or resume a task blocked on its budget with a new budget."""
        task_id = self._need_task()
        if task_id is not None:
            self._open_approve(task_id)

    @work(group="forms")
    async def _open_approve(self, task_id: int) -> None:
        try:
            task = await self.call_service(lambda: self.service.decision_task(task_id))
            if approvals.waits_on_budget(task):
                await self._approve_budget(task)
                return
            approvals.refuse_unless_waiting(task, "approve")  # the kernel's one-line refusal
            base = self.service.agent_settings().base_branch
        except KernelError as exc:
            self.notify(str(exc).splitlines()[0] or type(exc).__name__, severity="error")
            return
        if await self.push_screen_wait(ApproveScreen(task, base)):
            self._act(lambda: self.service.approve_task(task_id), _approved)

    async def _approve_budget(self, task: Task) -> None:
        row = await self.call_service(lambda: self.service.task_budget(task.id))
        form = BudgetForm(
            task_id=task.id,
            title=row["title"],
            status=row["status"],
            budget=row["budget_usd"],
            spent=row["spent"],
            approve=True,
        )
        done: Task | None = await self.push_screen_wait(form)
        if done is not None:
            self.notify(
                f"task #{done.id} is now {done.status} with a budget of ${done.budget_usd:g}"
            )

    def action_reject_task(self) -> None:
        """Send the selected task that waits for approval back to its worker, with feedback."""
        task_id = self._need_task()
        if task_id is not None:
            self._open_reject(task_id)

    @work(group="forms")
    async def _open_reject(self, task_id: int) -> None:
        try:
            task = await self.call_service(lambda: self.service.decision_task(task_id))
            approvals.refuse_unless_waiting(task, "reject")  # the kernel's one-line refusal
        except KernelError as exc:
            self.notify(str(exc).splitlines()[0] or type(exc).__name__, severity="error")
            return
        back: Task | None = await self.push_screen_wait(RejectForm(task))
        if back is not None:
            who = f" ({back.assignee})" if back.assignee else ""
            self.notify(f"task #{back.id} is now {back.status}{who}: sent back with your feedback")

    def action_conversations(self) -> None:
        """Open the conversations screen (on the open task's thread, from a task screen)."""
        if isinstance(self.screen, ConversationsScreen):
            return
        selected = "inbox"
        if isinstance(self.screen, TaskScreen):
            selected = f"task:{self.screen.task_id}"
        elif self.focused is self.query_one(AgentsPanel):
            a = self.query_one(AgentsPanel).selected_agent()
            selected = f"agent:{a.name}" if a else "inbox"
        self.open_conversations(selected)

    def action_message(self) -> None:
        """Message the selected agent, or the selected task (and its holder)."""
        self._open_message()

    @work(group="forms")
    async def _open_message(self) -> None:
        to_agent: str | None = None
        task_id: int | None = None
        channel: str | None = None
        agents = self.query_one(AgentsPanel)
        if isinstance(self.screen, ConversationsScreen):
            ref = self.screen.selected_ref()
            kind, _, name = (ref.key if ref else "").partition(":")
            if kind == "agent":
                to_agent = name
            elif kind == "channel":
                channel = name
            elif kind == "task":
                task_id = int(name)
        elif not isinstance(self.screen, TaskScreen) and self.focused is agents:
            a = agents.selected_agent()
            to_agent = a.name if a else None
        else:
            sel = self.selected_task()
            if sel is not None:
                task_id, to_agent = sel
        try:
            names = await self.call_service(self.service.agent_names)
        except KernelError:
            names = []
        mid = await self.push_screen_wait(
            MessageForm(to_agent=to_agent, task_id=task_id, channel=channel, agents=names)
        )
        if mid is not None:
            self.notify(f"message {mid} sent")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Mission control's own keys sleep under a form or dialog; board keys off the board.

        Textual's app actions (quit, pop_screen, focus_next, ...) are never refused: the
        help screen closes through app.pop_screen and forms move through app.focus_next.
        """
        if action not in _OWN_ACTIONS:
            return True
        if isinstance(self.screen, ModalScreen):
            return False  # a form or a dialog has the keyboard
        if action in _BOARD_ACTIONS:
            return not isinstance(self.screen, TaskScreen | ConversationsScreen)
        return True

    # ------------------------------------------------------------ test hooks --

    def settled(self) -> bool:
        """True when the service is idle and every snapshot it sent has been rendered."""
        return self.service.idle() and self.applied == self.service.loads

    def refresh_topics(self, *topics: Topic) -> None:
        """Re-read some topics (tests)."""
        self.service.refresh(*topics)
