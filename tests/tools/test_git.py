"""Git tools against a real repository: status, diff, log, commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

from agentos.tools.base import ToolContext


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


async def test_status_clean_and_dirty(ctx: ToolContext, repo: Path, call) -> None:
    r = await call(ctx, "git_status")
    assert r.ok and "agentos/task-7" in r.output and "clean" in r.output
    (repo / "new.py").write_text("x = 1\n")
    (repo / "README.md").write_text("changed\n")
    r = await call(ctx, "git_status")
    assert " M README.md" in r.output and "?? new.py" in r.output


async def test_commit_as_the_agent_then_nothing_to_commit(
    ctx: ToolContext, repo: Path, call
) -> None:
    (repo / "pkg").mkdir()
    (repo / "pkg" / "mod.py").write_text("def f():\n    return 1\n")
    r = await call(ctx, "git_commit", {"message": "Add pkg.mod\n\nWith a body."})
    assert r.ok, r.output
    assert r.output.startswith("committed on agentos/task-7: ")
    assert "Add pkg.mod" in r.output and "pkg/mod.py" in r.output
    author = git(repo, "log", "-1", "--format=%an <%ae>|%cn|%B").strip()
    assert author == "worker-1 <worker-1@agentos.local>|worker-1|Add pkg.mod\n\nWith a body."
    r = await call(ctx, "git_commit", {"message": "again"})
    assert r.ok and r.output == "nothing to commit (working tree clean)"


async def test_commit_refuses_the_base_branch(ctx: ToolContext, repo: Path, call) -> None:
    git(repo, "checkout", "-q", "main")
    (repo / "x.txt").write_text("x\n")
    r = await call(ctx, "git_commit", {"message": "sneak onto main"})
    assert not r.ok and "base branch 'main'" in r.output
    assert git(repo, "log", "--format=%s", "main").split("\n")[0] == "initial"


async def test_commit_leaves_tool_output_out(ctx: ToolContext, repo: Path, call) -> None:
    (repo / ".agentos" / "screenshots").mkdir(parents=True)
    (repo / ".agentos" / "screenshots" / "s.png").write_bytes(b"png")
    (repo / "real.txt").write_text("real\n")
    r = await call(ctx, "git_commit", {"message": "real work"})
    assert r.ok
    files = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert files == ["real.txt"]


async def test_diff_worktree_and_against_base(ctx: ToolContext, repo: Path, call) -> None:
    r = await call(ctx, "git_diff")
    assert r.ok and r.output == "no uncommitted changes"
    (repo / "README.md").write_text("hello\nworld\n")
    (repo / "untracked.py").write_text("u = 1\n")
    r = await call(ctx, "git_diff")
    assert "+world" in r.output and "untracked.py" in r.output
    r = await call(ctx, "git_diff", {"stat": True})
    assert "README.md | 1 +" in r.output
    r = await call(ctx, "git_diff", {"against_base": True})
    assert r.output == "no committed changes since main"
    await call(ctx, "git_commit", {"message": "world"})
    # main moves on meanwhile: the branch diff shows only the branch's own work
    git(repo, "checkout", "-q", "main")
    (repo / "other.txt").write_text("other\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "main moves")
    git(repo, "checkout", "-q", "agentos/task-7")
    r = await call(ctx, "git_diff", {"against_base": True})
    assert "+world" in r.output and "untracked.py" in r.output and "other.txt" not in r.output
    r = await call(ctx, "git_diff", {"against_base": True, "path": "README.md"})
    assert "+world" in r.output and "untracked.py" not in r.output
    r = await call(ctx, "git_diff", {"path": "../x"})
    assert not r.ok and "outside the worktree" in r.output
    ctx.extra["base_branch"] = "develop"
    r = await call(ctx, "git_diff", {"against_base": True})
    assert not r.ok and "cannot diff against 'develop'" in r.output


async def test_diff_is_capped(ctx: ToolContext, repo: Path, call) -> None:
    ctx.output_cap = 2000
    (repo / "big.txt").write_text("".join(f"line {i}\n" for i in range(5000)))
    await call(ctx, "git_commit", {"message": "big"})
    r = await call(ctx, "git_diff", {"against_base": True})
    assert r.ok and len(r.output) <= 2100 and "cut" in r.output


async def test_log(ctx: ToolContext, repo: Path, call) -> None:
    for i in range(3):
        (repo / f"f{i}.txt").write_text(str(i))
        await call(ctx, "git_commit", {"message": f"change {i}"})
    r = await call(ctx, "git_log", {"max_count": 2})
    lines = r.output.splitlines()
    assert len(lines) == 2 and lines[0].endswith("worker-1: change 2")
    r = await call(ctx, "git_log", {"since_base": True})
    assert [ln.split(": ", 1)[1] for ln in r.output.splitlines()] == [
        "change 2",
        "change 1",
        "change 0",
    ]
    r = await call(ctx, "git_log", {"path": "f1.txt"})
    assert r.output.endswith("change 1") and len(r.output.splitlines()) == 1
    r = await call(ctx, "git_log", {"max_count": 1000})
    assert not r.ok and "max_count" in r.output


async def test_git_in_a_fresh_repository(ctx: ToolContext, worktree: Path, call) -> None:
    git(worktree, "init", "-q", "-b", "work")
    assert (await call(ctx, "git_log")).output == "no commits yet"
    (worktree / "a.txt").write_text("a\n")
    r = await call(ctx, "git_commit", {"message": "first"})
    assert r.ok and "committed on work" in r.output


async def test_not_a_repository(ctx: ToolContext, call) -> None:
    r = await call(ctx, "git_status")
    assert not r.ok and "not a git repository" in r.output.lower()


async def test_never_climbs_into_an_enclosing_repository(tmp_path: Path, call) -> None:
    outer = tmp_path / "outer"
    inner = outer / "inner"
    inner.mkdir(parents=True)
    git(outer, "init", "-q", "-b", "main")
    (inner / "x.txt").write_text("x\n")
    ctx = ToolContext(kernel=None, agent="w", role="worker", task_id=1, worktree=inner)
    r = await call(ctx, "git_commit", {"message": "would commit in outer"})
    assert not r.ok and "not a git repository" in r.output.lower()
    assert git(outer, "status", "--short").strip() == "?? inner/"


async def test_planted_hooks_do_not_run_on_commit(
    ctx: ToolContext, repo: Path, call, tmp_path: Path
) -> None:
    marker = tmp_path / "hook-ran"
    hooks = Path(git(repo, "rev-parse", "--git-common-dir").strip())
    hooks = (hooks if hooks.is_absolute() else repo / hooks) / "hooks"
    hooks.mkdir(exist_ok=True)
    for name in ("pre-commit", "commit-msg", "post-commit", "reference-transaction"):
        (hooks / name).write_text(f"#!/bin/sh\necho {name} >> {marker}\n")
        (hooks / name).chmod(0o755)
    (repo / "f.txt").write_text("f\n")
    r = await call(ctx, "git_commit", {"message": "with hooks planted"})
    assert r.ok, r.output
    assert not marker.exists()


async def test_repository_config_that_runs_programs_is_refused(
    ctx: ToolContext, repo: Path, call, tmp_path: Path
) -> None:
    marker = tmp_path / "filter-ran"
    git(repo, "config", "filter.evil.clean", f"sh -c 'touch {marker}; cat'")
    (repo / ".gitattributes").write_text("* filter=evil\n")
    (repo / "g.txt").write_text("g\n")
    r = await call(ctx, "git_commit", {"message": "through the filter"})
    assert not r.ok and "filter.evil.clean" in r.output
    assert not marker.exists()


async def test_a_git_pointer_redirected_by_the_model_is_refused(
    ctx: ToolContext, repo: Path, call, tmp_path: Path
) -> None:
    evil = tmp_path / "evil"
    git(tmp_path, "init", "-q", str(evil))
    git(evil, "config", "diff.x.textconv", "touch /tmp/pwned-textconv")
    dotgit = repo / ".git"
    if dotgit.is_dir():
        import shutil

        shutil.rmtree(dotgit)
    else:
        dotgit.unlink()
    (repo / ".git").symlink_to(evil / ".git")
    r = await call(ctx, "git_status")
    assert not r.ok and "symbolic link" in r.output
    (repo / ".git").unlink()
    (repo / ".git").write_text(f"gitdir: {evil / '.git'}\n")
    r = await call(ctx, "git_status")
    assert not r.ok and "diff.x.textconv" in r.output
