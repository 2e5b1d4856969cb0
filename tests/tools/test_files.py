"""File tools on a real filesystem: confinement to the worktree, reads, writes, edits, search."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from agentos.tools.base import ToolContext, ToolError
from agentos.tools.files import resolve_in_worktree

# ------------------------------------------------------------ confinement ----


@pytest.mark.parametrize(
    "path",
    ["../outside.txt", "a/../../outside.txt", "/etc/passwd", "./../wt2/x", "a/b/../../../x"],
)
async def test_traversal_is_refused(ctx: ToolContext, call, path: str) -> None:
    for tool, args in (
        ("read_file", {"path": path}),
        ("write_file", {"path": path, "content": "x"}),
        ("edit_file", {"path": path, "old": "a", "new": "b"}),
        ("list_files", {"path": path}),
        ("search_files", {"pattern": "x", "path": path}),
    ):
        r = await call(ctx, tool, args)
        assert not r.ok and "outside the worktree" in r.output, (tool, path, r.output)
    assert not (ctx.worktree.parent / "outside.txt").exists()


async def test_symlink_escapes_are_refused(ctx: ToolContext, tmp_path: Path, call) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.txt").write_text("TOP SECRET\n")
    wt = ctx.worktree
    (wt / "dirlink").symlink_to(secret)  # a directory link out
    (wt / "filelink").symlink_to(secret / "key.txt")  # a file link out
    (wt / "dangling").symlink_to(secret / "new.txt")  # a dangling link out
    (wt / "sub").mkdir()
    (wt / "sub" / "up").symlink_to("../..")  # relative link climbing out

    for path in ("dirlink/key.txt", "filelink", "sub/up/secret/key.txt"):
        r = await call(ctx, "read_file", {"path": path})
        assert not r.ok and "outside the worktree" in r.output, (path, r.output)
        assert "TOP SECRET" not in r.output
    r = await call(ctx, "write_file", {"path": "dangling", "content": "pwned"})
    assert not r.ok and "outside the worktree" in r.output
    assert not (secret / "new.txt").exists()
    r = await call(ctx, "write_file", {"path": "dirlink/new/x.txt", "content": "pwned"})
    assert not r.ok and not (secret / "new").exists()
    r = await call(ctx, "edit_file", {"path": "filelink", "old": "TOP", "new": "LOW"})
    assert not r.ok and (secret / "key.txt").read_text() == "TOP SECRET\n"
    # listing and searching do not follow links out either
    r = await call(ctx, "list_files", {"pattern": "**/*"})
    assert "key.txt" not in r.output
    r = await call(ctx, "search_files", {"pattern": "SECRET"})
    assert r.ok and "TOP SECRET" not in r.output


async def test_links_inside_the_worktree_and_absolute_paths_inside_are_fine(
    ctx: ToolContext, call
) -> None:
    wt = ctx.worktree
    (wt / "src").mkdir()
    (wt / "src" / "a.py").write_text("print('a')\n")
    (wt / "alias").symlink_to("src")
    r = await call(ctx, "read_file", {"path": "alias/a.py"})
    assert r.ok and "print('a')" in r.output
    r = await call(ctx, "read_file", {"path": str(wt / "src" / "a.py")})
    assert r.ok and r.output.startswith("src/a.py (lines 1-1 of 1)")
    assert resolve_in_worktree(ctx, "src/../src/a.py") == (wt / "src" / "a.py").resolve()


def test_resolve_refuses_nul(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="NUL"):
        resolve_in_worktree(ctx, "a\x00b")


async def test_git_dir_is_not_writable(ctx: ToolContext, call) -> None:
    (ctx.worktree / ".git").mkdir()
    r = await call(ctx, "write_file", {"path": ".git/hooks/pre-commit", "content": "x"})
    assert not r.ok and "inside .git" in r.output


# ------------------------------------------------------------------ read ----


async def test_read_with_line_ranges(ctx: ToolContext, call) -> None:
    (ctx.worktree / "f.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    r = await call(ctx, "read_file", {"path": "f.txt", "start_line": 3, "end_line": 4})
    assert r.ok
    assert r.output == "f.txt (lines 3-4 of 10)\n     3\tline 3\n     4\tline 4"
    r = await call(ctx, "read_file", {"path": "f.txt", "start_line": 11})
    assert not r.ok and "has 10 lines" in r.output
    r = await call(ctx, "read_file", {"path": "f.txt", "start_line": 0})
    assert not r.ok and "start_line" in r.output


async def test_read_stops_at_the_cap_and_says_where_to_resume(ctx: ToolContext, call) -> None:
    ctx.output_cap = 2000
    (ctx.worktree / "big.txt").write_text("".join(f"{'x' * 60} {i}\n" for i in range(1, 501)))
    r = await call(ctx, "read_file", {"path": "big.txt"})
    assert r.ok and len(r.output) <= 2000
    first = r.output.splitlines()[0]
    assert "of 500" in first and "read on with start_line=" in first


async def test_read_binary_missing_and_directory(ctx: ToolContext, call) -> None:
    (ctx.worktree / "b.bin").write_bytes(b"\x00\x01\x02")
    (ctx.worktree / "d").mkdir()
    assert "binary file (3 bytes)" in (await call(ctx, "read_file", {"path": "b.bin"})).output
    r = await call(ctx, "read_file", {"path": "nope.txt"})
    assert not r.ok and "no such file" in r.output
    r = await call(ctx, "read_file", {"path": "d"})
    assert not r.ok and "is a directory" in r.output


# ----------------------------------------------------------- write / edit ----


async def test_write_creates_parents_and_overwrites(ctx: ToolContext, call) -> None:
    r = await call(ctx, "write_file", {"path": "a/b/c.txt", "content": "one\ntwo\n"})
    assert r.ok and r.output == "created a/b/c.txt (8 bytes, 2 lines)"
    assert (ctx.worktree / "a/b/c.txt").read_text() == "one\ntwo\n"
    r = await call(ctx, "write_file", {"path": "a/b/c.txt", "content": "three"})
    assert r.ok and r.output.startswith("overwrote")


async def test_edit_requires_a_unique_exact_match(ctx: ToolContext, call) -> None:
    f = ctx.worktree / "m.py"
    f.write_text("x = 1\ny = 1\nx = 1\n")
    r = await call(ctx, "edit_file", {"path": "m.py", "old": "x = 1", "new": "x = 2"})
    assert not r.ok and "occurs 2 times" in r.output
    assert f.read_text() == "x = 1\ny = 1\nx = 1\n"  # nothing changed
    r = await call(ctx, "edit_file", {"path": "m.py", "old": "z = 1", "new": "z = 2"})
    assert not r.ok and "not found" in r.output
    r = await call(ctx, "edit_file", {"path": "m.py", "old": "y = 1\nx = 1", "new": "y = 3"})
    assert r.ok and r.output == "edited m.py: replaced 1 occurrence at line 2"
    assert f.read_text() == "x = 1\ny = 3\n"
    f.write_text("a a a\n")
    r = await call(ctx, "edit_file", {"path": "m.py", "old": "a", "new": "b", "replace_all": True})
    assert r.ok and "3 occurrences" in r.output and f.read_text() == "b b b\n"
    r = await call(ctx, "edit_file", {"path": "m.py", "old": "", "new": "b"})
    assert not r.ok and "old" in r.output
    r = await call(ctx, "edit_file", {"path": "new.py", "old": "a", "new": "b"})
    assert not r.ok and "write_file" in r.output


async def test_edit_hints_at_whitespace(ctx: ToolContext, call) -> None:
    (ctx.worktree / "w.py").write_text("def f():\n    return 1\n")
    r = await call(ctx, "edit_file", {"path": "w.py", "old": "  return 1  ", "new": "return 2"})
    assert not r.ok and "whitespace" in r.output


# ---------------------------------------------------------- list / search ----


async def test_list_globs_and_skips_git(ctx: ToolContext, call) -> None:
    wt = ctx.worktree
    (wt / ".git").mkdir()
    (wt / ".git" / "config").write_text("x")
    (wt / "pkg").mkdir()
    (wt / "pkg" / "a.py").write_text("")
    (wt / "pkg" / "b.txt").write_text("")
    (wt / "top.py").write_text("")
    r = await call(ctx, "list_files", {})
    assert r.output.splitlines() == ["pkg/", "top.py"]
    r = await call(ctx, "list_files", {"pattern": "**/*.py"})
    assert r.output.splitlines() == ["pkg/a.py", "top.py"]
    r = await call(ctx, "list_files", {"path": "pkg", "pattern": "*.txt"})
    assert r.output == "pkg/b.txt"
    r = await call(ctx, "list_files", {"pattern": "../*"})
    assert not r.ok


async def test_list_is_capped(ctx: ToolContext, call, monkeypatch: pytest.MonkeyPatch) -> None:
    from agentos.tools import files

    monkeypatch.setattr(files, "MAX_LIST_ENTRIES", 5)
    for i in range(10):
        (ctx.worktree / f"f{i}").write_text("")
    r = await call(ctx, "list_files", {})
    assert len(r.output.splitlines()) == 6 and "stopped at 5 entries" in r.output


async def test_search_regex_skips_git_and_binaries(ctx: ToolContext, call) -> None:
    wt = ctx.worktree
    (wt / ".git").mkdir()
    (wt / ".git" / "HEAD").write_text("needle\n")
    (wt / "bin.dat").write_bytes(b"needle\x00")
    (wt / "src").mkdir()
    (wt / "src" / "a.py").write_text("first\nNeedle = 1\nneedle_two = 2\n")
    (wt / "src" / "b.md").write_text("needle in docs\n")
    r = await call(ctx, "search_files", {"pattern": r"needle\w*"})
    assert r.output.splitlines() == ["src/a.py:3: needle_two = 2", "src/b.md:1: needle in docs"]
    r = await call(ctx, "search_files", {"pattern": "needle", "ignore_case": True, "glob": "*.py"})
    assert r.output.splitlines() == ["src/a.py:2: Needle = 1", "src/a.py:3: needle_two = 2"]
    r = await call(ctx, "search_files", {"pattern": "needle", "max_results": 1})
    assert "stopped at 1 matches" in r.output
    r = await call(ctx, "search_files", {"pattern": "("})
    assert not r.ok and "bad regular expression" in r.output
    r = await call(ctx, "search_files", {"pattern": "absent"})
    assert r.ok and r.output.startswith("no match for 'absent'")


def test_worktree_must_exist(tmp_path: Path) -> None:
    ctx = ToolContext(kernel=None, agent="a", role="r", task_id=None, worktree=tmp_path / "gone")
    with pytest.raises(ToolError, match="does not exist"):
        resolve_in_worktree(ctx, "x")
    assert not os.path.exists(tmp_path / "gone")


async def test_list_does_not_enter_links_out(ctx: ToolContext, tmp_path: Path, call) -> None:
    big = tmp_path / "elsewhere"
    (big / "deep").mkdir(parents=True)
    (big / "deep" / "file.txt").write_text("")
    wt = ctx.worktree
    (wt / "out").symlink_to(big)
    (wt / "a" / "b").mkdir(parents=True)
    (wt / "a" / "b" / "c.txt").write_text("")
    r = await call(ctx, "list_files", {"pattern": "**"})
    assert r.output.splitlines() == ["a/", "a/b/", "a/b/c.txt", "out@"]
    r = await call(ctx, "list_files", {"pattern": "a/*"})
    assert r.output.splitlines() == ["a/b/"]
    r = await call(ctx, "list_files", {"pattern": "*/*/*.txt"})
    assert r.output.splitlines() == ["a/b/c.txt"]
    r = await call(ctx, "list_files", {"path": "out"})
    assert not r.ok and "outside the worktree" in r.output


def test_glob_regex() -> None:
    from agentos.tools.files import glob_regex

    assert glob_regex("*.py").match("a.py") and not glob_regex("*.py").match("d/a.py")
    assert glob_regex("**/*.py").match("a.py") and glob_regex("**/*.py").match("d/e/a.py")
    assert glob_regex("test_?.[!x]y").match("test_1.zy")
    assert not glob_regex("test_?.[!x]y").match("test_1.xy")
    assert glob_regex("a+b(c)").match("a+b(c)")


async def test_search_skips_vendored_and_generated_dirs(ctx: ToolContext, call) -> None:
    for d in ("node_modules/x", ".venv/lib", "__pycache__", "src"):
        (ctx.worktree / d).mkdir(parents=True)
        (ctx.worktree / d / "f.txt").write_text("needle\n")
    r = await call(ctx, "search_files", {"pattern": "needle"})
    assert r.output == "src/f.txt:1: needle"


# -------------------------------------------------- hard links and O_NOFOLLOW ----


async def test_hard_links_to_outside_files_are_refused(
    ctx: ToolContext, tmp_path: Path, call
) -> None:
    # What an unsandboxed shell could do: `ln ~/.pgpass wt/notes.txt`, then read_file it.
    outside = tmp_path / "outside-secret.txt"
    outside.write_text("TOP SECRET\n")
    os.link(outside, ctx.worktree / "notes.txt")
    r = await call(ctx, "read_file", {"path": "notes.txt"})
    assert not r.ok and "hard links" in r.output and "TOP SECRET" not in r.output
    r = await call(ctx, "edit_file", {"path": "notes.txt", "old": "TOP", "new": "LOW"})
    assert not r.ok and "hard links" in r.output
    r = await call(ctx, "write_file", {"path": "notes.txt", "content": "pwned"})
    assert not r.ok and "hard links" in r.output
    assert outside.read_text() == "TOP SECRET\n"  # neither truncated nor rewritten
    r = await call(ctx, "search_files", {"pattern": "SECRET"})
    assert r.ok and "TOP SECRET" not in r.output


async def test_a_symlinked_intermediate_directory_out_is_refused(
    ctx: ToolContext, tmp_path: Path, call
) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "deep").mkdir(parents=True)
    (elsewhere / "deep" / "f.txt").write_text("outside\n")
    (ctx.worktree / "a").mkdir()
    (ctx.worktree / "a" / "b").symlink_to(elsewhere)  # a/b/deep/f.txt leads outside
    for tool, args in (
        ("read_file", {"path": "a/b/deep/f.txt"}),
        ("write_file", {"path": "a/b/deep/new.txt", "content": "x"}),
        ("write_file", {"path": "a/b/deep/f.txt", "content": "x"}),
        ("edit_file", {"path": "a/b/deep/f.txt", "old": "outside", "new": "inside"}),
    ):
        r = await call(ctx, tool, args)
        assert not r.ok and "outside the worktree" in r.output, (tool, r.output)
    assert (elsewhere / "deep" / "f.txt").read_text() == "outside\n"
    assert not (elsewhere / "deep" / "new.txt").exists()


def test_the_walk_never_lets_the_kernel_follow_a_link(ctx: ToolContext, tmp_path: Path) -> None:
    # walk_beneath reads each link itself; a directory swapped for a link after the
    # walk opened it is not followed: the fd it holds is the directory it checked.
    from agentos.tools.files import walk_beneath

    (ctx.worktree / "d").mkdir()
    found = walk_beneath(ctx, "d/x.txt")
    try:
        (ctx.worktree / "d").rename(ctx.worktree / "d.old")
        (ctx.worktree / "d").symlink_to(tmp_path)
        fd = os.open("x.txt", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644, dir_fd=found.dir_fd)
        os.close(fd)
    finally:
        found.close()
    assert (ctx.worktree / "d.old" / "x.txt").exists()
    assert not (tmp_path / "x.txt").exists()


async def test_special_files_do_not_hang_the_tools(ctx: ToolContext, call) -> None:
    os.mkfifo(ctx.worktree / "pipe")
    r = await call(ctx, "read_file", {"path": "pipe"})
    assert not r.ok and "not a regular file" in r.output
    r = await call(ctx, "write_file", {"path": "pipe", "content": "x"})
    assert not r.ok and "not a regular file" in r.output
