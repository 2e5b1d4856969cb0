"""The reviewer's check: which command, and what its outcome means.

Which command, first found wins:
  1. AGENTOS_CHECK_COMMAND, the operator's word for this workspace;
  2. `check_command:` in `.agentos.yaml` at the root of the workspace's base branch
     (read from the committed base branch, never from the task's worktree, so a worker
     cannot rewrite the check that judges it);
  3. the role's `check_command` (shipped reviewer: `{python} -m pytest -q`).
`{python}` stands for the interpreter AgentOS runs on, which has pytest installed.

A check has four outcomes. `passed` and `failed` are the tests speaking; `cannot_run`
(the command or the module it runs does not exist, or is not executable) and
`timed_out` are the check itself failing, which no change by the worker can fix, so
the reviewer does not reject the work for them: the task is blocked with the reason.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from typing import Any, Literal

import yaml

Outcome = Literal["passed", "failed", "cannot_run", "timed_out"]
WORKSPACE_CONFIG = ".agentos.yaml"
CHECK_TIMEOUT = 900.0
OUTPUT_TAIL = 4000

# What a shell or Python prints when the check's program or module does not exist.
_MISSING_MODULE = re.compile(r"^\S*python[0-9.]*: No module named ([\w.]+)", re.MULTILINE)
_NOT_FOUND = re.compile(r"(command not found|No such file or directory)", re.IGNORECASE)


@dataclass(frozen=True)
class CheckResult:
    """What the check did, for the reviewer's prompt and the task's record."""

    command: str
    outcome: Outcome
    exit_code: int
    output: str
    reason: str = ""

    @property
    def ok(self) -> bool:
        """Whether the check passed."""
        return self.outcome == "passed"

    def as_vars(self) -> dict[str, Any]:
        """The template variables of the reviewer's task prompt."""
        return {
            "command": self.command,
            "ok": self.ok,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "output": self.output,
            "reason": self.reason,
        }


def expand(command: str) -> str:
    """Substitute `{python}` with this interpreter (quoted for the shell)."""
    return command.replace("{python}", shlex.quote(sys.executable))


def workspace_check(config_text: str | None) -> str | None:
    """`check_command` from the text of a workspace's .agentos.yaml (None if unset).

    ValueError with a one-line reason when the file is not a mapping or the value is
    not a non-empty string.
    """
    if not config_text:
        return None
    try:
        data = yaml.safe_load(config_text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{WORKSPACE_CONFIG} is not valid YAML: {exc}".splitlines()[0]) from exc
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"{WORKSPACE_CONFIG} must be a mapping of settings")
    value = data.get("check_command")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{WORKSPACE_CONFIG}: check_command must be a non-empty string")
    return value.strip()


def choose(
    *, setting: str | None, workspace: str | None, role: str | None
) -> tuple[str | None, str]:
    """The check command and where it came from."""
    for command, source in (
        (setting, "AGENTOS_CHECK_COMMAND"),
        (workspace, WORKSPACE_CONFIG),
        (role, "the role's check_command"),
    ):
        if command and command.strip():
            return command.strip(), source
    return None, "none configured"


def classify(command: str, exit_code: int, output: str) -> tuple[Outcome, str]:
    """What an exit code and output mean: the tests failed, or the check cannot run."""
    if exit_code == 0:
        return "passed", ""
    if exit_code == 5 and "pytest" in command:
        return "passed", "pytest collected no tests"
    if exit_code in (126, 127):
        what = "is not executable" if exit_code == 126 else "was not found"
        program = command.split()[0] if command.split() else command
        return "cannot_run", f"the check's program {program!r} {what}"
    missing = _MISSING_MODULE.search(output)
    if missing and _runs_module(command, missing.group(1)):
        return "cannot_run", (
            f"the check runs module {missing.group(1)!r}, which is not installed for "
            f"{_interpreter(command)}"
        )
    if exit_code == 2 and _NOT_FOUND.search(
        output.strip().splitlines()[0] if output.strip() else ""
    ):
        return "cannot_run", "the check's program was not found"
    return "failed", f"exit {exit_code}"


def _runs_module(command: str, module: str) -> bool:
    try:
        argv = shlex.split(command)
    except ValueError:
        return False
    return any(
        a == "-m" and i + 1 < len(argv) and argv[i + 1] == module for i, a in enumerate(argv)
    )


def _interpreter(command: str) -> str:
    try:
        return shlex.split(command)[0]
    except (ValueError, IndexError):
        return "the interpreter"


def advice(source: str) -> str:
    """How a user changes the check, for the blocked task's reason."""
    return (
        f"the command came from {source}; set `check_command:` in {WORKSPACE_CONFIG} on the "
        "base branch, AGENTOS_CHECK_COMMAND, or the reviewer role (AGENTOS_HOME/roles/"
        "reviewer.yaml), then `agentos task retry ID`"
    )


def tail(text: str) -> str:
    """The end of a long output (where test runners put their summary)."""
    return text[-OUTPUT_TAIL:]


__all__ = [
    "CHECK_TIMEOUT",
    "WORKSPACE_CONFIG",
    "CheckResult",
    "advice",
    "choose",
    "classify",
    "expand",
    "tail",
    "workspace_check",
]
