"""The team on a user's own repository: its base branch, its working tree left alone,
merges with plumbing, git that cannot be turned against us, refs moved outside review."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from agentos.agents.workspace import BaseBranchBusy, GitError, Workspace, branch_name
from agentos.kernel.db import Kernel
from agentos.kernel.settings import Settings

ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_AUTHOR_NAME": "Alice",
    "GIT_AUTHOR_EMAIL": "alice@example.com",
    "GIT_COMMITTER_NAME": "Alice",
    "GIT_COMMITTER_EMAIL": "alice@example.com",
}


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=ENV, capture_output=True, text=True, check=True
    ).stdout.strip()


def user_repo(path: Path, branch: str) -> Path:
    """A user's checkout with one commit on `branch` and nothing else."""
    path.mkdir(parents=True)
    sh(path, "init", "-q", "-b", branch)
    (path / "app.py").write_text("print('v1')\n")
    sh(path, "add", "-A")
    sh(path, "commit", "-q", "-m", "v1")
    return path


async def task_commit(ws: Workspace, task_id: int, name: str, text: str) -> Path:
    """What a worker does: a file committed on the task branch in its worktree."""
    wt = await ws.worktree(task_id)
    (wt / name).write_text(text)
    sh(wt, "add", "-A")
    sh(wt, "commit", "-q", "-m", f"task {task_id}")
    return wt


@pytest.fixture
async def kernel(settings: Settings) -> Any:
    k = await Kernel(settings).open(min_size=1, max_size=4)
    yield k
    await k.close()


@pytest.mark.parametrize("branch", ["master", "trunk"])
async def test_the_base_branch_is_the_repositorys_own(
    kernel: Kernel, tmp_path: Path, branch: str
) -> None:
    repo = user_repo(tmp_path / "repo", branch)
    ws = await Workspace(repo, tmp_path / "trees", kernel=kernel).ensure()
    assert ws.base_branch == branch
    await task_commit(ws, 1, "feature.py", "x = 1\n")
    commit = await ws.merge(kernel, 1, "Add feature")
    assert sh(repo, "rev-parse", branch) == commit
    assert sh(repo, "rev-parse", "--abbrev-ref", "HEAD") == branch
    # the clean checkout followed the merge: the file is there and nothing is dirty
    assert (repo / "feature.py").read_text() == "x = 1\n"
    assert sh(repo, "status", "--porcelain") == ""
    assert "main" not in sh(repo, "branch", "--list")


async def test_a_configured_base_branch_that_does_not_exist_is_refused(
    kernel: Kernel, tmp_path: Path
) -> None:
    repo = user_repo(tmp_path / "repo", "master")
    with pytest.raises(GitError, match=r"no branch 'main'.*AGENTOS_BASE_BRANCH"):
        await Workspace(repo, tmp_path / "trees", kernel=kernel, base_branch="main").ensure()


async def test_a_dirty_checkout_of_the_base_branch_is_never_touched(
    kernel: Kernel, tmp_path: Path
) -> None:
    repo = user_repo(tmp_path / "repo", "master")
    ws = await Workspace(repo, tmp_path / "trees", kernel=kernel).ensure()
    await task_commit(ws, 1, "app.py", "print('from the team')\n")
    before = sh(repo, "rev-parse", "master")
    (repo / "app.py").write_text("print('my uncommitted edit')\n")
    (repo / "notes.txt").write_text("untracked\n")
    sh(repo, "add", "notes.txt")  # something staged too
    index_before = sh(repo, "ls-files", "-s")
    with pytest.raises(BaseBranchBusy, match=r"checked out at .*uncommitted changes.*app.py"):
        await ws.merge(kernel, 1, "Change the app")
    assert sh(repo, "rev-parse", "master") == before
    assert (repo / "app.py").read_text() == "print('my uncommitted edit')\n"
    assert sh(repo, "ls-files", "-s") == index_before


async def test_a_base_branch_checked_out_elsewhere_or_nowhere(
    kernel: Kernel, tmp_path: Path
) -> None:
    repo = user_repo(tmp_path / "repo", "master")
    sh(repo, "checkout", "-q", "-b", "my-feature")
    (repo / "wip.py").write_text("wip\n")  # the user's own work on their branch
    ws = await Workspace(repo, tmp_path / "trees", kernel=kernel, base_branch="master").ensure()
    await task_commit(ws, 1, "one.py", "1\n")
    commit = await ws.merge(kernel, 1, "One")
    # master is checked out nowhere: the ref moved, the user's checkout did not
    assert sh(repo, "rev-parse", "master") == commit
    assert sh(repo, "rev-parse", "--abbrev-ref", "HEAD") == "my-feature"
    assert not (repo / "one.py").exists() and (repo / "wip.py").read_text() == "wip\n"
    # now master is checked out in a second worktree of the user's
    other = tmp_path / "other"
    sh(repo, "worktree", "add", "-q", str(other), "master")
    await task_commit(ws, 2, "two.py", "2\n")
    commit2 = await ws.merge(kernel, 2, "Two")
    assert sh(other, "rev-parse", "HEAD") == commit2 and (other / "two.py").exists()
    await task_commit(ws, 3, "three.py", "3\n")
    (other / "one.py").write_text("edited\n")
    with pytest.raises(BaseBranchBusy, match=str(other)):
        await ws.merge(kernel, 3, "Three")
    assert sh(repo, "rev-parse", "master") == commit2


async def test_merging_twice_does_not_add_a_second_commit(kernel: Kernel, tmp_path: Path) -> None:
    repo = user_repo(tmp_path / "repo", "main")
    ws = await Workspace(repo, tmp_path / "trees", kernel=kernel).ensure()
    await task_commit(ws, 1, "f.py", "f\n")
    first = await ws.merge(kernel, 1, "F")
    assert await ws.merge(kernel, 1, "F") == first


async def test_a_conflict_is_a_git_error_and_nothing_moves(kernel: Kernel, tmp_path: Path) -> None:
    repo = user_repo(tmp_path / "repo", "main")
    ws = await Workspace(repo, tmp_path / "trees", kernel=kernel).ensure()
    await task_commit(ws, 1, "app.py", "print('one')\n")
    await task_commit(ws, 2, "app.py", "print('two')\n")
    await ws.merge(kernel, 1, "One")
    at = sh(repo, "rev-parse", "main")
    with pytest.raises(GitError, match=r"conflicts in: app.py") as info:
        await ws.merge(kernel, 2, "Two")
    assert not isinstance(info.value, BaseBranchBusy)
    assert sh(repo, "rev-parse", "main") == at and sh(repo, "status", "--porcelain") == ""


async def test_planted_hooks_never_run(kernel: Kernel, tmp_path: Path) -> None:
    repo = user_repo(tmp_path / "repo", "main")
    marker = tmp_path / "pwned"
    for hook in (
        "post-checkout",
        "post-merge",
        "pre-commit",
        "post-commit",
        "reference-transaction",
        "pre-merge-commit",
    ):
        h = repo / ".git" / "hooks" / hook
        h.write_text(f"#!/bin/sh\necho {hook} >> {marker}\n")
        h.chmod(0o755)
    ws = await Workspace(repo, tmp_path / "trees", kernel=kernel).ensure()
    await ws.worktree(1)
    wt = ws.path(1)
    (wt / "x.py").write_text("x\n")
    # the worker's commit goes through our git too (the tool layer has its own runner)
    from agentos.agents.workspace import git

    await git(wt, "add", "-A")
    await git(wt, "commit", "-q", "-m", "x")
    await ws.merge(kernel, 1, "X")
    assert not marker.exists()


@pytest.mark.parametrize(
    "key,value",
    [
        ("core.sshCommand", "touch /tmp/pwned-ssh"),
        ("filter.evil.smudge", "touch /tmp/pwned-smudge"),
        ("diff.evil.textconv", "touch /tmp/pwned-textconv"),
        ("include.path", "../evil.config"),
    ],
)
async def test_repository_config_that_runs_programs_is_refused(
    kernel: Kernel, tmp_path: Path, key: str, value: str
) -> None:
    repo = user_repo(tmp_path / "repo", "main")
    sh(repo, "config", key, value)
    with pytest.raises(GitError, match=f"git config that runs programs.*{key.lower()}"):
        await Workspace(repo, tmp_path / "trees", kernel=kernel).ensure()


async def test_git_sees_no_secret_of_ours(
    kernel: Kernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentos.agents.workspace import git

    monkeypatch.setenv("OPENAI_API_KEY", "canary-7f3a")
    repo = user_repo(tmp_path / "repo", "main")
    res = await git(repo, "var", "-l")
    assert "canary-7f3a" not in res.output


async def test_a_worker_that_moved_the_base_branch_is_undone(
    kernel: Kernel, tmp_path: Path
) -> None:
    repo = user_repo(tmp_path / "repo", "master")
    ws = await Workspace(repo, tmp_path / "trees", kernel=kernel).ensure()
    await ws.worktree(7)
    before = await ws.refs_snapshot()
    wt = await task_commit(ws, 7, "sneaky.py", "approved by nobody\n")
    tip = sh(wt, "rev-parse", "HEAD")
    base = sh(repo, "rev-parse", "master")
    sh(wt, "update-ref", "refs/heads/master", tip)  # what an unsandboxed shell could do
    sh(wt, "tag", "release", tip)
    undone = await ws.undo_foreign_moves(7, before)
    assert len(undone) == 2 and any(u.startswith("master ") for u in undone)
    assert sh(repo, "rev-parse", "master") == base
    assert "release" not in sh(repo, "tag", "--list")
    assert (repo / "sneaky.py").exists() is False
    assert sh(repo, "rev-parse", f"refs/heads/{branch_name(7)}") == tip


async def test_a_person_committing_on_the_base_branch_meanwhile_is_left_alone(
    kernel: Kernel, tmp_path: Path
) -> None:
    repo = user_repo(tmp_path / "repo", "master")
    ws = await Workspace(repo, tmp_path / "trees", kernel=kernel).ensure()
    before = await ws.refs_snapshot()
    await task_commit(ws, 8, "mine.py", "task work\n")
    (repo / "app.py").write_text("print('v2')\n")
    sh(repo, "commit", "-q", "-am", "v2 by Alice")
    mine = sh(repo, "rev-parse", "master")
    assert await ws.undo_foreign_moves(8, before) == []
    assert sh(repo, "rev-parse", "master") == mine


async def test_a_review_merge_of_another_task_during_a_stage_is_left_alone(
    kernel: Kernel, tmp_path: Path
) -> None:
    """Found by the chaos suite: the guard took another task's merged commits (made with
    the tools' @agentos.local identity) for this task's and reset main."""
    from agentos.agents.workspace import git

    repo = user_repo(tmp_path / "repo", "main")
    ws = await Workspace(repo, tmp_path / "trees", kernel=kernel).ensure()
    await ws.worktree(8)
    before = await ws.refs_snapshot()
    other = await ws.worktree(9)
    (other / "nine.py").write_text("9\n")
    await git(other, "add", "-A")
    await git(other, "commit", "-q", "-m", "task 9 work")  # as agentos@agentos.local
    merged = await ws.merge(kernel, 9, "Nine")
    assert await ws.undo_foreign_moves(8, before) == []
    assert sh(repo, "rev-parse", "main") == merged
