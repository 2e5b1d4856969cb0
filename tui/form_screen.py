"""The base of the forms: a centred dialog, ctrl+s submits, escape closes, errors inline."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from agentos.kernel.errors import KernelError
from agentos.tui import fmt
from rich.text import Text
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Button, Static

R = TypeVar("R")


class FormScreen(ModalScreen[R], Generic[R]):
    """Subclasses compose fields inside `#dialog` and implement submit()."""

    DEFAULT_CSS = """
    FormScreen {
        align: center middle;
    }
    FormScreen #dialog {
        width: 76;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: round $accent;
        border-title-style: bold;
        border-subtitle-color: $text-muted;
        background: $surface;
        padding: 0 1;
    }
    FormScreen .row {
        height: auto;
        margin-bottom: 1;
    }
    FormScreen .label {
        width: 13;
        color: $text-muted;
    }
    FormScreen Input {
        width: 1fr;
    }
    FormScreen TextArea {
        width: 1fr;
        height: 4;
    }
    FormScreen Select {
        width: 1fr;
    }
    FormScreen Input.-textual-compact, FormScreen TextArea.-textual-compact {
        background: $boost;
    }
    FormScreen Input.-textual-compact:focus, FormScreen TextArea.-textual-compact:focus {
        background: $surface-lighten-2;
    }
    FormScreen #error {
        color: $error;
        text-style: bold;
        height: auto;
    }
    FormScreen #buttons {
        height: 1;
        align-horizontal: right;
    }
    FormScreen #buttons Button {
        margin-left: 2;
    }
    """

    BINDINGS = [
        Binding("ctrl+s", "submit", "Submit", show=True, priority=True),
        Binding("escape", "close", "Close", show=True),
        # a one-line field has no use for up and down: they move between fields (a
        # TextArea keeps them for its cursor, its own bindings come first)
        Binding("down", "app.focus_next", "Next field", show=False),
        Binding("up", "app.focus_previous", "Previous field", show=False),
    ]

    busy = False

    def error(self, message: str) -> None:
        """Show a one-line error under the fields."""
        self.query_one("#error", Static).update(Text(fmt.shown(message)))  # never markup

    def action_close(self) -> None:
        """Close without saving."""
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "submit":
            self.action_submit()
        else:
            self.dismiss(None)

    def action_submit(self) -> None:
        """Validate, then run submit() in a worker."""
        if self.busy:
            return
        self.error("")
        self.run_worker(self._submit(), exclusive=True, group="form")

    async def _submit(self) -> None:
        self.busy = True
        try:
            await self.submit()
        except KernelError as exc:
            self.error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        except ValueError as exc:
            self.error(str(exc))
        finally:
            self.busy = False

    async def submit(self) -> None:  # pragma: no cover - abstract
        """Do the action; raise KernelError or ValueError to show a message."""
        raise NotImplementedError

    async def call(self, fn: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        """Run fn on the service (the App's call_service)."""
        return await self.app.call_service(fn)  # type: ignore[attr-defined]
