"""kernel/metrics.py against a real database: the kernel counts what it does (claims,
rescues), reads queue depth at scrape time, and renders valid exposition text."""

from __future__ import annotations

import asyncio
import uuid

from agentos.kernel import metrics, sessions, tasks
from agentos.kernel.db import Kernel
from agentos.kernel.dispatch import Dispatcher
from agentos.kernel.duties import KernelDuties
from prometheus_client.parser import text_string_to_metric_families


def _samples() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def _get(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_claims_rescues_and_queue_depth_are_counted(kernel: Kernel) -> None:
    role = f"m{uuid.uuid4().hex[:6]}"  # a role of its own: the registry is the process's
    before = _samples()
    async with kernel.connection() as conn:
        sid = await sessions.register_session(
            conn, role=role, agents=["ma"], lease_seconds=kernel.settings.lease_seconds
        )
        for i in range(3):
            await tasks.create_task(conn, title=f"t{i}", role=role)
    d = await Dispatcher(kernel, role=role, session_id=sid).open()
    try:
        got = await d.claim(["ma"])
    finally:
        await d.close()
    assert len(got.tasks) == 1
    await metrics.refresh(kernel)
    mid = _samples()
    assert _get(mid, "agentos_claims_total", role=role) == 1
    assert _get(mid, "agentos_claim_seconds_count", role=role) == 1
    assert _get(mid, "agentos_queue_depth", role=role, state="ready") == 2
    assert _get(mid, "agentos_queue_depth", role=role, state="running") == 1
    assert _get(mid, "agentos_db_transactions_total") > _get(
        before, "agentos_db_transactions_total"
    )
    # the holder vanishes: its lease expires and the leader rescues it
    await asyncio.sleep(kernel.settings.lease_seconds + 0.3)
    done = await KernelDuties(kernel, uuid.uuid4()).run_once()
    assert done["rescued"] == 1
    await metrics.refresh(kernel)
    after = _samples()
    assert _get(after, "agentos_lease_rescues_total", outcome="retried") == (
        _get(mid, "agentos_lease_rescues_total", outcome="retried") + 1
    )
    assert _get(after, "agentos_queue_depth", role=role, state="running") == 0
