"""Fixtures for the tool tests: a worktree on disk, a git repository, a tool context."""

from __future__ import annotations

import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from agentos.tools.base import ToolContext, ToolResult
from agentos.tools.registry import ALL_TOOLS


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    """An empty directory standing for the task's worktree."""
    wt = tmp_path / "wt"
    wt.mkdir()
    return wt


@pytest.fixture
def ctx(worktree: Path) -> ToolContext:
    """A context without a database, for the file, shell and git tools."""
    return ToolContext(
        kernel=None, agent="worker-1", role="worker", task_id=7, worktree=worktree, shell_timeout=20
    )


def git(cwd: Path, *args: str) -> str:
    """Run git for test setup and checks."""
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(worktree: Path) -> Path:
    """A git repository with one commit on main, checked out on branch agentos/task-7."""
    git(worktree, "init", "-q", "-b", "main")
    git(worktree, "config", "user.name", "setup")
    git(worktree, "config", "user.email", "setup@example.com")
    (worktree / "README.md").write_text("hello\n")
    git(worktree, "add", "-A")
    git(worktree, "commit", "-q", "-m", "initial")
    git(worktree, "checkout", "-q", "-b", "agentos/task-7")
    return worktree


async def _call(
    ctx: ToolContext, name: str, args: dict[str, Any] | str | None = None
) -> ToolResult:
    return await ALL_TOOLS[name].call(ctx, args if args is not None else {})


@pytest.fixture
def call() -> Callable[..., Awaitable[ToolResult]]:
    """call(ctx, name, args): run a tool by name through Tool.call, as the agent loop does."""
    return _call
