"""Named advisory locks: one mutual-exclusion primitive for every process of a team.

A lock is a PostgreSQL session-level advisory lock on `hashtext(key)`, held on a
dedicated autocommit connection for the whole `async with` block. It serialises work
outside the database that many processes share (git changes to one repository, merges
onto one base branch). If the holder dies, its connection closes and the server frees
the lock, so a crashed process never leaves a lock behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from agentos.kernel.db import Kernel
from agentos.sql import query


@contextlib.asynccontextmanager
async def advisory_lock(kernel: Kernel, key: str) -> AsyncIterator[None]:
    """Hold the advisory lock `key` across every process on this database."""
    conn = await kernel.connect(autocommit=True)
    try:
        await conn.execute(query("advisory_lock"), {"key": key})
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # a closed connection frees it anyway
                await conn.execute(query("advisory_unlock"), {"key": key})
    finally:
        await conn.close()
