"""`agentos log`: print the activity log, and follow it live from NOTIFY."""

from __future__ import annotations

import json
from typing import Any

import click
from agentos.cli.common import open_kernel, safe, settings


def _line(row: dict[str, Any]) -> str:
    # One row, one line: a message carrying a newline or an escape sequence (written
    # before 004's checks, by psql, or quoting an agent's tool output) is shown escaped,
    # so it can neither fake another row nor repaint the terminal.
    task = f" #{row['task_id']}" if row["task_id"] else ""
    return (
        f"{row['created_at']:%Y-%m-%d %H:%M:%S} {safe(row['kind']):<16} "
        f"{safe(row['actor'] or '-'):<14}{task} {safe(row['message'])}"
    )


def _emit(row: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(row, default=str))
    else:
        click.echo(_line(row))


async def show_log(
    *, follow: bool, actor: str | None, task_id: int | None, limit: int, as_json: bool
) -> None:
    """Print the last `limit` rows; with follow, then every new row as it is committed."""
    from agentos.kernel import activities, bus

    kernel = await open_kernel(pool_max=1)
    try:
        async with kernel.connection() as conn:
            rows = await activities.recent(conn, actor=actor, task_id=task_id, limit=limit)
        rows.reverse()
        for r in rows:
            _emit(r, as_json)
        if not follow:
            return
        last = rows[-1]["id"] if rows else 0
        if not rows:
            async with kernel.connection() as conn:
                last = await activities.last_id(conn)
        listener = await kernel.subscribe([bus.ACTIVITY])
        wake = listener.wake([bus.ACTIVITY])
        # Ids are handed out at insert but become visible at commit, so a lower id can
        # appear after a higher one: re-read a window behind the newest id and skip what
        # was already printed.
        seen: dict[int, None] = {r["id"]: None for r in rows}
        floor = last  # never reach back before what was current when following began
        try:
            while True:
                async with kernel.connection() as conn:
                    new = await activities.after(
                        conn, max(floor, last - 500), actor=actor, task_id=task_id, limit=1000
                    )
                new = [r for r in new if r["id"] not in seen]
                for r in new:
                    _emit(r, as_json)
                    seen[r["id"]] = None
                    last = max(last, r["id"])
                while len(seen) > 5000:
                    seen.pop(next(iter(seen)))
                if len(new) < 1000:
                    await wake.wait(settings().poll_interval)
        finally:
            listener.drop(wake)
    finally:
        await kernel.close()
