"""File tools, confined to the task's worktree.

Every path goes through `resolve_in_worktree`: it is taken relative to the worktree
(an absolute path must already point inside it), and every existing component is
resolved, so neither `..` nor a symlink (dangling or not) can lead outside. Writes into
`.git` are refused. This confinement keeps an agent's mistakes inside its worktree; it is
not a sandbox (the shell tool runs arbitrary commands): isolation is the process's user
and container.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path

from agentos.tools.base import Tool, ToolContext, ToolError, ToolInput
from pydantic import Field

MAX_READ_BYTES = 10_000_000
MAX_WRITE_CHARS = 1_000_000
MAX_LIST_ENTRIES = 1_000
MAX_SEARCH_FILE_BYTES = 2_000_000
MAX_SEARCH_RESULTS = 200
MAX_LINE_SHOWN = 300
SKIP_DIRS = {".git"}
# never searched: generated, vendored or tool output
SEARCH_SKIP_DIRS = SKIP_DIRS | {
    "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache",
    ".ruff_cache", ".agentos",
}  # fmt: skip
MAX_SEARCH_FILES = 20_000


def worktree_root(ctx: ToolContext) -> Path:
    """The worktree, resolved; ToolError when it does not exist."""
    try:
        return ctx.worktree.resolve(strict=True)
    except OSError as exc:
        raise ToolError(f"the worktree {ctx.worktree} does not exist") from exc


def resolve_in_worktree(ctx: ToolContext, path: str) -> Path:
    """The absolute path for `path`, refused when it (or a link on the way) leaves the worktree."""
    root = worktree_root(ctx)
    text = path.strip() or "."
    if "\x00" in text:
        raise ToolError("paths cannot contain NUL characters")
    raw = Path(text)
    if raw.is_absolute():
        # accepted only when it names something inside the worktree
        for base in (root, Path(os.path.abspath(ctx.worktree))):
            try:
                raw = raw.relative_to(base)
                break
            except ValueError:
                continue
        else:
            raise ToolError(f"{path}: outside the worktree (use a path relative to it)")
    # Resolve component by component, as the OS does: a symlink is followed before any
    # later `..` applies, so a purely lexical check would be fooled.
    current = root
    for part in raw.parts:
        if part in ("", "."):
            continue
        current = current / part
        if part == ".." or current.is_symlink() or current.exists():
            current = current.resolve()
            if not _inside(current, root):
                raise ToolError(f"{path}: outside the worktree")
    return current


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def rel(ctx: ToolContext, path: Path) -> str:
    """A path as the model should see it: relative to the worktree."""
    root = worktree_root(ctx)
    return "." if path == root else str(path.relative_to(root))


def _refuse_git_dir(ctx: ToolContext, path: Path) -> None:
    if ".git" in path.relative_to(worktree_root(ctx)).parts:
        raise ToolError(f"{rel(ctx, path)}: refusing to write inside .git (use the git tools)")


def _is_binary(data: bytes) -> bool:
    return b"\x00" in data[:8192]


# ------------------------------------------------------------------- read ----


class ReadFileInput(ToolInput):
    path: str = Field(description="File path relative to the worktree.")
    start_line: int = Field(default=1, ge=1, description="First line to show (1-based).")
    end_line: int | None = Field(
        default=None, ge=1, description="Last line to show (inclusive); default: to the end."
    )


async def read_file(ctx: ToolContext, args: ReadFileInput) -> str:
    """Lines of a text file, numbered, within the output cap."""
    path = resolve_in_worktree(ctx, args.path)
    return await asyncio.to_thread(_read_file, ctx, path, args)


def _read_file(ctx: ToolContext, path: Path, args: ReadFileInput) -> str:
    name = rel(ctx, path)
    if not path.exists():
        raise ToolError(f"{name}: no such file")
    if path.is_dir():
        raise ToolError(f"{name}: is a directory (use list_files)")
    size = path.stat().st_size
    if size > MAX_READ_BYTES:
        raise ToolError(f"{name}: {size} bytes, larger than the {MAX_READ_BYTES}-byte limit")
    data = path.read_bytes()
    if _is_binary(data):
        return f"{name}: binary file ({size} bytes), not shown"
    lines = data.decode("utf-8", errors="replace").splitlines()
    total = len(lines)
    if total == 0:
        return f"{name}: empty file"
    end = total if args.end_line is None else min(args.end_line, total)
    if args.start_line > total:
        raise ToolError(f"{name} has {total} lines; start_line {args.start_line} is past the end")
    if end < args.start_line:
        raise ToolError("end_line is before start_line")
    budget = max(ctx.output_cap - 200, 1000)
    out: list[str] = []
    used = 0
    last = args.start_line - 1
    for n in range(args.start_line, end + 1):
        line = f"{n:6}\t{lines[n - 1]}"
        if used + len(line) + 1 > budget and out:
            break
        out.append(line)
        used += len(line) + 1
        last = n
    header = f"{name} (lines {args.start_line}-{last} of {total})"
    if last < end:
        header += f"; cut at the output cap: read on with start_line={last + 1}"
    return header + "\n" + "\n".join(out)


# ------------------------------------------------------------------ write ----


class WriteFileInput(ToolInput):
    path: str = Field(description="File path relative to the worktree; parents are created.")
    content: str = Field(
        max_length=MAX_WRITE_CHARS, description="The whole new content of the file."
    )


async def write_file(ctx: ToolContext, args: WriteFileInput) -> str:
    """Create or overwrite a file with the given content."""
    path = resolve_in_worktree(ctx, args.path)
    _refuse_git_dir(ctx, path)
    return await asyncio.to_thread(_write_file, ctx, path, args.content)


def _write_file(ctx: ToolContext, path: Path, content: str) -> str:
    name = rel(ctx, path)
    if path.is_dir():
        raise ToolError(f"{name}: is a directory")
    existed = path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    # the parents now exist: check again that none of them is a link out
    resolve_in_worktree(ctx, name)
    data = content.encode("utf-8")
    path.write_bytes(data)
    verb = "overwrote" if existed else "created"
    return f"{verb} {name} ({len(data)} bytes, {len(content.splitlines())} lines)"


# ------------------------------------------------------------------- edit ----


class EditFileInput(ToolInput):
    path: str = Field(description="File path relative to the worktree.")
    old: str = Field(
        min_length=1,
        description="The exact text to replace, including whitespace; it must occur exactly "
        "once (add surrounding lines to make it unique).",
    )
    new: str = Field(description="The replacement text.")
    replace_all: bool = Field(
        default=False, description="Replace every occurrence instead of exactly one."
    )


async def edit_file(ctx: ToolContext, args: EditFileInput) -> str:
    """Replace one exact, unique piece of text in a file."""
    path = resolve_in_worktree(ctx, args.path)
    _refuse_git_dir(ctx, path)
    return await asyncio.to_thread(_edit_file, ctx, path, args)


def _edit_file(ctx: ToolContext, path: Path, args: EditFileInput) -> str:
    name = rel(ctx, path)
    if not path.is_file():
        raise ToolError(f"{name}: no such file (use write_file to create it)")
    if args.old == args.new:
        raise ToolError("old and new are the same text; nothing to do")
    data = path.read_bytes()
    if _is_binary(data):
        raise ToolError(f"{name}: binary file; cannot edit text in it")
    text = data.decode("utf-8", errors="surrogateescape")
    count = text.count(args.old)
    if count == 0:
        hint = ""
        if args.old.strip() and text.count(args.old.strip()) > 0:
            hint = " (it occurs with different surrounding whitespace; copy it exactly)"
        raise ToolError(f"{name}: the old text was not found{hint}; read the file again")
    if count > 1 and not args.replace_all:
        raise ToolError(
            f"{name}: the old text occurs {count} times; include more surrounding lines to "
            "make it unique, or set replace_all"
        )
    line = text[: text.index(args.old)].count("\n") + 1
    text = (
        text.replace(args.old, args.new)
        if args.replace_all
        else text.replace(args.old, args.new, 1)
    )
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    what = f"{count} occurrences" if count > 1 else f"1 occurrence at line {line}"
    return f"edited {name}: replaced {what}"


# ------------------------------------------------------------------- list ----


class ListFilesInput(ToolInput):
    path: str = Field(default=".", description="Directory relative to the worktree.")
    pattern: str = Field(
        default="*",
        description="Glob under that directory, e.g. '*' (this directory), '**/*.py' "
        "(recursive). .git is skipped.",
    )


async def list_files(ctx: ToolContext, args: ListFilesInput) -> str:
    """Paths matching a glob; directories end with /, links with @ (never followed)."""
    base = resolve_in_worktree(ctx, args.path)
    if Path(args.pattern).is_absolute() or ".." in Path(args.pattern).parts:
        raise ToolError("the pattern must be relative and must not contain '..'")
    return await asyncio.to_thread(_list_files, ctx, base, args.pattern)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob over /-separated relative paths: `*` and `?` stay within a name, `**` crosses."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and "]" in pattern[i + 1 :]:
            j = pattern.index("]", i + 1)
            body = pattern[i + 1 : j]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _list_files(ctx: ToolContext, base: Path, pattern: str) -> str:
    root = worktree_root(ctx)
    if not base.is_dir():
        raise ToolError(f"{rel(ctx, base)}: not a directory")
    rx = glob_regex(pattern.strip("/") or "*")
    # depth bound: 'a/*' needs two levels, '**' needs all
    max_depth = None if "**" in pattern else pattern.strip("/").count("/") + 1
    found: list[str] = []
    more = False
    # os.walk does not follow directory links, so a link out of the worktree is listed
    # (as a name) but never entered.
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        here = Path(dirpath)
        depth = len(here.relative_to(base).parts)
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        entries = [(d, True) for d in dirnames] + [(f, False) for f in sorted(filenames)]
        for name, is_dir in entries:
            relp = (here / name).relative_to(base).as_posix()
            if not rx.match(relp):
                continue
            if len(found) >= MAX_LIST_ENTRIES:
                more = True
                break
            full = here / name
            shown = full.relative_to(root).as_posix()
            found.append(f"{shown}@" if full.is_symlink() else f"{shown}/" if is_dir else shown)
        if more:
            break
        if max_depth is not None and depth + 1 >= max_depth:
            dirnames[:] = []
    if not found:
        return f"no files match {pattern!r} under {rel(ctx, base)}"
    found.sort()
    note = f"\n[stopped at {MAX_LIST_ENTRIES} entries; narrow the pattern]" if more else ""
    return "\n".join(found) + note


# ----------------------------------------------------------------- search ----


class SearchFilesInput(ToolInput):
    pattern: str = Field(min_length=1, description="Python regular expression to look for.")
    path: str = Field(default=".", description="Directory (or file) to search, relative.")
    glob: str | None = Field(
        default=None, description="Only files whose name matches this glob, e.g. '*.py'."
    )
    ignore_case: bool = Field(default=False, description="Case-insensitive match.")
    max_results: int = Field(
        default=100, ge=1, le=MAX_SEARCH_RESULTS, description="Stop after this many matches."
    )


async def search_files(ctx: ToolContext, args: SearchFilesInput) -> str:
    """Lines matching a regular expression in the worktree's text files (path:line: text)."""
    base = resolve_in_worktree(ctx, args.path)
    try:
        rx = re.compile(args.pattern, re.IGNORECASE if args.ignore_case else 0)
    except re.error as exc:
        raise ToolError(f"bad regular expression: {exc}") from exc
    return await asyncio.to_thread(_search_files, ctx, base, rx, args)


def _search_files(ctx: ToolContext, base: Path, rx: re.Pattern[str], args: SearchFilesInput) -> str:
    root = worktree_root(ctx)
    if not base.exists():
        raise ToolError(f"{rel(ctx, base)}: no such file or directory")
    hits: list[str] = []
    files = 0
    for path in _walk(base):
        if args.glob is not None and not path.match(args.glob):
            continue
        try:
            if path.stat().st_size > MAX_SEARCH_FILE_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if _is_binary(data):
            continue
        files += 1
        if files > MAX_SEARCH_FILES:
            note = f"[stopped after {MAX_SEARCH_FILES} files; narrow the path or glob]"
            return "\n".join([*hits, note])
        for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if rx.search(line):
                shown = line if len(line) <= MAX_LINE_SHOWN else line[:MAX_LINE_SHOWN] + " [...]"
                hits.append(f"{path.relative_to(root)}:{n}: {shown}")
                if len(hits) >= args.max_results:
                    return (
                        "\n".join(hits)
                        + f"\n[stopped at {args.max_results} matches; narrow the search]"
                    )
    if not hits:
        return f"no match for {args.pattern!r} in {files} files"
    return "\n".join(hits)


def _walk(base: Path) -> Iterator[Path]:
    if base.is_file():
        yield base
        return
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SEARCH_SKIP_DIRS)
        for f in sorted(filenames):
            p = Path(dirpath) / f
            if not p.is_symlink():
                yield p


TOOLS = [
    Tool(
        "read_file",
        "Read a text file of the worktree, with line numbers (not part of the file). "
        "Use start_line/end_line for long files.",
        ReadFileInput,
        read_file,
        read_only=True,
    ),
    Tool(
        "write_file",
        "Create or overwrite a file in the worktree with the given content (parent "
        "directories are created). For a small change to an existing file use edit_file.",
        WriteFileInput,
        write_file,
    ),
    Tool(
        "edit_file",
        "Replace an exact piece of text in a file. `old` must match the file exactly "
        "(whitespace included) and occur once, unless replace_all is set.",
        EditFileInput,
        edit_file,
    ),
    Tool(
        "list_files",
        "List files and directories of the worktree matching a glob (directories end "
        "with /, symbolic links with @; links are not followed).",
        ListFilesInput,
        list_files,
        read_only=True,
    ),
    Tool(
        "search_files",
        "Search the worktree's text files for a regular expression; prints path:line: text.",
        SearchFilesInput,
        search_files,
        read_only=True,
    ),
]
