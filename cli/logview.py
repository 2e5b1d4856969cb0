"""`agentos log`: print the activity log, and follow it live from NOTIFY."""

from __future__ import annotations

import json
from typing import Any

import click
from agentos.cli.common import open_kernel, safe, settings


def message_id(row: dict[str, Any]) -> int | None:
    """The message a message.sent activity is about."""
    data = row.get("data") or {}
    mid = data.get("message") if row.get("kind") == "message.sent" else None
    return mid if isinstance(mid, int) else None


def _line(row: dict[str, Any]) -> str:
    # One row, one line: a message carrying a newline or an escape sequence (written
    # before 004's checks, by psql, or quoting an agent's tool output) is shown escaped,
    # so it can neither fake another row nor repaint the terminal.
    task = f" #{row['task_id']}" if row["task_id"] else ""
    mid = message_id(row)
    # a message's text is cut at 200 characters here: say where the rest is
    more = (
        f" (message #{mid} in full: agentos message show {mid})"
        if mid is not None and (row.get("data") or {}).get("cut")
        else ""
    )
    return (
        f"{row['created_at']:%Y-%m-%d %H:%M:%S} {safe(row['kind']):<16} "
        f"{safe(row['actor'] or '-'):<14}{task} {safe(row['message'])}{more}"
    )


def _emit(row: dict[str, Any], as_json: bool, bodies: dict[int, str] | None = None) -> None:
    mid = message_id(row)
    body = bodies.get(mid) if bodies is not None and mid is not None else None
    if as_json:
        click.echo(json.dumps({**row, "body": body} if body is not None else row, default=str))
        return
    click.echo(_line(row))
    if body is not None:
        for line in safe(body, keep_newlines=True).splitlines():
            click.echo(f"    {line}")


async def _bodies(kernel: Any, rows: list[dict[str, Any]], full: bool) -> dict[int, str] | None:
    """With --full, the whole text of the messages these rows are about."""
    if not full:
        return None
    from agentos.kernel import messages

    ids = [mid for mid in (message_id(r) for r in rows) if mid is not None]
    async with kernel.connection() as conn:
        found = await messages.by_ids(conn, ids)
    return {i: m.body for i, m in found.items()}


async def show_log(
    *,
    follow: bool,
    actor: str | None,
    task_id: int | None,
    limit: int,
    as_json: bool,
    full: bool = False,
) -> None:
    """Print the last `limit` rows; with follow, then every new row as it is committed.
    With full, a message's whole text follows its line (JSON: a `body` key)."""
    from agentos.kernel import activities, bus

    kernel = await open_kernel(pool_max=1)
    try:
        async with kernel.connection() as conn:
            rows = await activities.recent(conn, actor=actor, task_id=task_id, limit=limit)
        rows.reverse()
        bodies = await _bodies(kernel, rows, full)
        for r in rows:
            _emit(r, as_json, bodies)
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
                bodies = await _bodies(kernel, new, full)
                for r in new:
                    _emit(r, as_json, bodies)
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
