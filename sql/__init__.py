"""Plain-SQL migrations and named queries, shipped as package data.

Migrations are files named NNN_title.sql, applied in order. Queries live in
queries.sql as named blocks (`-- name: claim_jobs`, a one-line description, the SQL)
and are loaded once by name; Python never builds SQL by concatenating strings. A
concern with many statements of its own has its own file in the same format, read by
the same `query(name)` (KERNEL_FILES); a name is defined once across them.
Mission control's reads sit in tui.sql, in the same format (run by kernel.views).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_MIGRATION = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_NAME = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Migration:
    """One numbered migration file."""

    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file, recorded so an edited applied migration is noticed."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


@cache
def migrations() -> tuple[Migration, ...]:
    """Every migration shipped with this version, in order."""
    found = []
    for entry in resources.files(__name__).iterdir():
        m = _MIGRATION.match(entry.name)
        if m:
            found.append(Migration(m.group(1), m.group(2), entry.read_text(encoding="utf-8")))
    return tuple(sorted(found, key=lambda mig: mig.version))


def _named_blocks(text: str) -> dict[str, str]:
    """The `-- name:` blocks of one file, description lines dropped."""
    parts = _NAME.split(text)
    out: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [ln for ln in body.strip().splitlines() if not ln.startswith("-- ")]
        out[name] = "\n".join(lines).strip().rstrip(";")
    return out


@cache
def _blocks(filename: str) -> dict[str, str]:
    text = resources.files(__name__).joinpath(filename).read_text(encoding="utf-8")
    return _named_blocks(text)


# The kernel's query files: queries.sql, and one per concern with many statements
# (messages and channels; what people do to the team: approvals, agents as data; the
# secrets store).
KERNEL_FILES = ("queries.sql", "messages.sql", "admin.sql", "secrets.sql")


@cache
def queries() -> dict[str, str]:
    """The named queries of the kernel's files (KERNEL_FILES); a name defined twice is an error."""
    out: dict[str, str] = {}
    for filename in KERNEL_FILES:
        for name, text in _blocks(filename).items():
            if name in out:
                raise ValueError(f"query {name!r} is defined twice (second time in {filename})")
            out[name] = text
    return out


def query(name: str) -> str:
    """One named query; KeyError names the missing query."""
    return queries()[name]


def tui_queries() -> dict[str, str]:
    """The named reads of tui.sql: what mission control shows (run by kernel.views)."""
    return _blocks("tui.sql")


def tui_query(name: str) -> str:
    """One named read of tui.sql; KeyError names the missing query."""
    return tui_queries()[name]
