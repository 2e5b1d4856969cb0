"""File tools, confined to the task's worktree.

Every path is resolved by walking it one component at a time from a file descriptor
of the worktree (`walk_beneath`): each directory is opened with
`O_NOFOLLOW | O_DIRECTORY` relative to its parent's descriptor, and the file itself with
`O_NOFOLLOW`, so the kernel never follows a link for us and a directory swapped for a
symlink between our check and our open is caught, not followed. A symbolic link met on
the way is read (`readlink`) and its target resolved the same way; a link whose target
leaves the worktree, `..` above it, or an absolute path outside it is refused
(RESOLVE_BENEATH semantics, in user space, portable). A regular file with more than one
hard link is refused: its other names may be outside the worktree, where a link made
through an unsandboxed shell could point at any file the agent's user can read or
write. Writes into `.git` are refused.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agentos.tools.base import Tool, ToolContext, ToolError, ToolInput
from pydantic import Field

MAX_READ_BYTES = 10_000_000
MAX_WRITE_CHARS = 1_000_000
MAX_LIST_ENTRIES = 1_000
MAX_SEARCH_FILE_BYTES = 2_000_000
MAX_SEARCH_RESULTS = 200
MAX_LINE_SHOWN = 300
MAX_LINK_HOPS = 40  # as the kernel's own limit on symbolic links in one lookup
SKIP_DIRS = {".git"}
# never searched: generated, vendored or tool output
SEARCH_SKIP_DIRS = SKIP_DIRS | {
    "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache",
    ".ruff_cache", ".agentos",
}  # fmt: skip
MAX_SEARCH_FILES = 20_000
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def worktree_root(ctx: ToolContext) -> Path:
    """The worktree, resolved; ToolError when it does not exist."""
    try:
        return ctx.worktree.resolve(strict=True)
    except OSError as exc:
        raise ToolError(f"the worktree {ctx.worktree} does not exist") from exc


def _parts(ctx: ToolContext, root: Path, text: str, base: list[str], shown: str) -> list[str]:
    """Components of `text` (relative to base, within root), `.` and `..` applied."""
    raw = Path(text)
    if raw.is_absolute():
        # accepted only when it names something inside the worktree
        for prefix in (root, Path(os.path.abspath(ctx.worktree))):
            try:
                raw = raw.relative_to(prefix)
                break
            except ValueError:
                continue
        else:
            raise ToolError(f"{shown}: outside the worktree (use a path relative to it)")
        base = []
    out = list(base)
    for part in raw.parts:
        if part in ("", "."):
            continue
        if part == "..":
            # lexical `..` is exact here: every component before it is a real directory
            # (links are replaced by their targets before the walk goes on)
            if not out:
                raise ToolError(f"{shown}: outside the worktree")
            out.pop()
        else:
            out.append(part)
    return out


@dataclass
class Beneath:
    """Where a path leads inside the worktree: its components and its parent directory's fd.

    `dir_fd` is open on the parent of the last component (the worktree itself for the
    worktree); `exists` says whether the walk reached the last component. Close it.
    """

    root: Path
    parts: list[str]
    dir_fd: int
    exists: bool
    parent_exists: bool = True

    @property
    def name(self) -> str:
        """The last component ('.' for the worktree itself)."""
        return self.parts[-1] if self.parts else "."

    @property
    def path(self) -> Path:
        """The absolute path, for messages and for callers that only need a name."""
        return self.root.joinpath(*self.parts)

    def close(self) -> None:
        """Close the directory descriptor."""
        os.close(self.dir_fd)


def walk_beneath(ctx: ToolContext, path: str, *, create_parents: bool = False) -> Beneath:
    """Walk `path` from the worktree without letting the kernel follow any link.

    Links inside the worktree are resolved by us (to their target, walked the same
    way); any step outside is a ToolError. With `create_parents` missing directories
    are created on the way (each mkdir relative to its parent's fd).
    """
    root = worktree_root(ctx)
    text = path.strip() or "."
    if "\x00" in text:
        raise ToolError("paths cannot contain NUL characters")
    parts = _parts(ctx, root, text, [], path)
    hops = 0
    while True:
        fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)  # the worktree itself is trusted
        restart = False
        try:
            for i, name in enumerate(parts):
                last = i == len(parts) - 1
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    if last:
                        return Beneath(root, parts, fd, exists=False)
                    if not create_parents:
                        # nothing exists below, so no link can lead anywhere: lexical is exact
                        return Beneath(root, parts, fd, exists=False, parent_exists=False)
                    os.mkdir(name, 0o777, dir_fd=fd)
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    hops += 1
                    if hops > MAX_LINK_HOPS:
                        raise ToolError(f"{path}: too many levels of symbolic links")
                    target = os.readlink(name, dir_fd=fd)
                    parts = _parts(ctx, root, target, parts[:i], path) + parts[i + 1 :]
                    restart = True
                    break
                if last:
                    return Beneath(root, parts, fd, exists=True)
                if not stat.S_ISDIR(st.st_mode):
                    raise ToolError(f"{'/'.join(parts[: i + 1])}: not a directory")
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        restart = True  # swapped for a link since the stat: look again
                        break
                    raise
                os.close(fd)
                fd = child
            else:
                return Beneath(root, parts, fd, exists=True)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        if not restart:  # pragma: no cover - every path above returns or restarts
            raise ToolError(f"{path}: cannot be resolved")


def resolve_in_worktree(ctx: ToolContext, path: str) -> Path:
    """The absolute path for `path`, refused when it (or a link on the way) leaves the worktree."""
    found = walk_beneath(ctx, path)
    found.close()
    return found.path


def open_beneath(
    ctx: ToolContext, path: str, flags: int, *, create_parents: bool = False
) -> tuple[int, os.stat_result, Beneath]:
    """Open a regular file of the worktree with O_NOFOLLOW; refuse links out and hard links.

    Returns the file descriptor, its stat and where it is. The caller closes the fd.
    """
    found = walk_beneath(ctx, path, create_parents=create_parents)
    name = rel_parts(found.parts)
    try:
        if not found.parts:
            raise ToolError(f"{name}: is a directory")
        if not found.exists and not (flags & os.O_CREAT and found.parent_exists):
            raise ToolError(f"{name}: no such file")
        try:
            # O_NONBLOCK: a FIFO planted in the worktree must not hang the tool
            fd = os.open(
                found.name,
                flags | os.O_NOFOLLOW | os.O_CLOEXEC | _NONBLOCK,
                0o666,
                dir_fd=found.dir_fd,
            )
        except IsADirectoryError as exc:
            raise ToolError(f"{name}: is a directory") from exc
        except FileNotFoundError as exc:
            raise ToolError(f"{name}: no such file") from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ToolError(f"{name}: became a symbolic link while opening; try again") from exc
            if exc.errno == errno.ENXIO:
                raise ToolError(f"{name}: not a regular file") from exc
            raise
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise ToolError(f"{name}: is a directory")
            if not stat.S_ISREG(st.st_mode):
                raise ToolError(f"{name}: not a regular file")
            if st.st_nlink > 1:
                raise ToolError(
                    f"{name}: has {st.st_nlink} hard links; another name of this file may be "
                    "outside the worktree, so the file tools do not open it (give it its own "
                    "copy: cp f f.new && mv f.new f)"
                )
        except BaseException:
            os.close(fd)
            raise
        return fd, st, found
    finally:
        found.close()


def rel_parts(parts: list[str]) -> str:
    """Components as the model should see them: relative to the worktree."""
    return "/".join(parts) or "."


def _read_fd(fd: int, limit: int) -> bytes:
    chunks = []
    size = 0
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)


def _write_fd(fd: int, data: bytes) -> None:
    os.lseek(fd, 0, os.SEEK_SET)
    os.ftruncate(fd, 0)
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def rel(ctx: ToolContext, path: Path) -> str:
    """A path as the model should see it: relative to the worktree."""
    root = worktree_root(ctx)
    return "." if path == root else str(path.relative_to(root))


def _refuse_git_dir(ctx: ToolContext, path: str) -> None:
    found = walk_beneath(ctx, path)
    found.close()
    if ".git" in found.parts:
        raise ToolError(
            f"{rel_parts(found.parts)}: refusing to write inside .git (use the git tools)"
        )


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
    return await asyncio.to_thread(_read_file, ctx, args)


def _read_file(ctx: ToolContext, args: ReadFileInput) -> str:
    try:
        fd, st, found = open_beneath(ctx, args.path, os.O_RDONLY)
    except ToolError as exc:
        if "is a directory" in str(exc):
            raise ToolError(f"{exc} (use list_files)") from exc
        raise
    name = rel_parts(found.parts)
    try:
        size = st.st_size
        if size > MAX_READ_BYTES:
            raise ToolError(f"{name}: {size} bytes, larger than the {MAX_READ_BYTES}-byte limit")
        data = _read_fd(fd, MAX_READ_BYTES)
    finally:
        os.close(fd)
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
    _refuse_git_dir(ctx, args.path)
    return await asyncio.to_thread(_write_file, ctx, args.path, args.content)


def _write_file(ctx: ToolContext, path: str, content: str) -> str:
    existed = walk_beneath(ctx, path)
    existed.close()
    # no O_TRUNC: the file is emptied only after the hard-link check passed
    fd, _, found = open_beneath(ctx, path, os.O_WRONLY | os.O_CREAT, create_parents=True)
    data = content.encode("utf-8")
    try:
        _write_fd(fd, data)
    finally:
        os.close(fd)
    verb = "overwrote" if existed.exists else "created"
    return f"{verb} {rel_parts(found.parts)} ({len(data)} bytes, {len(content.splitlines())} lines)"


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
    _refuse_git_dir(ctx, args.path)
    return await asyncio.to_thread(_edit_file, ctx, args)


def _edit_file(ctx: ToolContext, args: EditFileInput) -> str:
    try:
        fd, _, found = open_beneath(ctx, args.path, os.O_RDWR)
    except ToolError as exc:
        if "no such file" in str(exc):
            raise ToolError(f"{exc} (use write_file to create it)") from exc
        raise
    try:
        return _edit_open_file(fd, rel_parts(found.parts), args)
    finally:
        os.close(fd)


def _edit_open_file(fd: int, name: str, args: EditFileInput) -> str:
    if args.old == args.new:
        raise ToolError("old and new are the same text; nothing to do")
    data = _read_fd(fd, MAX_READ_BYTES)
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
    _write_fd(fd, text.encode("utf-8", errors="surrogateescape"))
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
            fd, st, _ = open_beneath(ctx, str(path.relative_to(root)), os.O_RDONLY)
        except (OSError, ToolError):
            continue  # links out, hard links, special files: never read
        try:
            if st.st_size > MAX_SEARCH_FILE_BYTES:
                continue
            data = _read_fd(fd, MAX_SEARCH_FILE_BYTES)
        except OSError:
            continue
        finally:
            os.close(fd)
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
