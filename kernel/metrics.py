"""Prometheus metrics of this process (prometheus-client), served on /metrics by the
health port of `agentos agent run` and by the supervisor of `agentos start`.

Everything is registered on REGISTRY, this module's own registry (not the library's
global one), with the process collector for memory and CPU. The kernel's counters live
here; the agents' (LLM latency, executor runs, stage outcomes) in agents/metrics.py on
the same registry. Queue depth is read from the database when /metrics is scraped
(`refresh`), never polled in the background. docs/metrics.md lists every name.

Labels stay bounded: roles, agents, models, executors and fixed outcome words; never a
task id, a message or anything a user typed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from agentos.kernel.db import Kernel

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

CLAIMS = Counter(
    "agentos_claims",
    "Tasks leased to this process's agent slots (claim_work)",
    ["role"],
    registry=REGISTRY,
)
ACTIVATIONS = Counter(
    "agentos_activations",
    "Activations (heartbeats, messages) taken by this process's agent slots",
    ["role", "kind"],
    registry=REGISTRY,
)
CLAIM_SECONDS = Histogram(
    "agentos_claim_seconds",
    "Round trip of one claim (dequeue and lease in one statement), whatever it took",
    ["role"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
CLAIM_FAILURES = Counter(
    "agentos_claim_failures",
    "Claims that failed (connection lost or server error); their leases are looked up",
    ["role"],
    registry=REGISTRY,
)
CLAIMS_RECOVERED = Counter(
    "agentos_claims_recovered",
    "Leases found after a claim's reply was lost (resumed or released)",
    ["role"],
    registry=REGISTRY,
)
WORK = Counter(
    "agentos_work",
    "Claimed work that ended, by how: completed (the handler returned), failed (it "
    "raised: the attempt is spent), lease_lost (StaleLease), released (stop)",
    ["role", "outcome"],
    registry=REGISTRY,
)
STAGE_ENDINGS = Counter(
    "agentos_stage_endings",
    "Stage endings written in batches (AgentHost.finish), by the status they moved to",
    ["role", "status"],
    registry=REGISTRY,
)
LEASE_RESCUES = Counter(
    "agentos_lease_rescues",
    "Expired leases this process rescued as the kernel's leader: retried or failed",
    ["outcome"],
    registry=REGISTRY,
)
SESSIONS_REAPED = Counter(
    "agentos_sessions_reaped",
    "Sessions this process declared dead as the kernel's leader",
    registry=REGISTRY,
)
LLM_CALLS = Counter(
    "agentos_llm_calls",
    "LLM calls recorded in llm_calls by this process: ok, error, budget (refused)",
    ["agent", "model", "outcome"],
    registry=REGISTRY,
)
LLM_TOKENS = Counter(
    "agentos_llm_tokens",
    "Tokens of the LLM calls recorded by this process",
    ["agent", "model", "kind"],
    registry=REGISTRY,
)
LLM_COST = Counter(
    "agentos_llm_cost_usd",
    "Dollars of the LLM calls recorded by this process (the provider's price or litellm's)",
    ["agent", "model"],
    registry=REGISTRY,
)
SLOTS = Gauge(
    "agentos_agent_slots", "Agent slots hosted by this process", ["role"], registry=REGISTRY
)
SLOTS_BUSY = Gauge(
    "agentos_agent_slots_busy",
    "Agent slots of this process running work now",
    ["role"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "agentos_queue_depth",
    "Tasks per role: ready (claimable now), waiting (backoff or dependencies), running "
    "(leased); read from the database at scrape time",
    ["role", "state"],
    registry=REGISTRY,
)
SCRAPE_ERRORS = Counter(
    "agentos_metrics_db_errors",
    "Scrapes whose database reads (queue depth) failed; the last values are served",
    registry=REGISTRY,
)


class _DatabaseTime(Collector):
    """The process's time in kernel transactions (kernel.db keeps the totals)."""

    def collect(self) -> Iterable[Metric]:
        from agentos.kernel import db

        seconds = CounterMetricFamily(
            "agentos_db_seconds",
            "Time in kernel transactions: pool checkout to commit, round trips included",
        )
        seconds.add_metric([], db.TOTALS["seconds"])
        yield seconds
        count = CounterMetricFamily("agentos_db_transactions", "Kernel transactions")
        count.add_metric([], db.TOTALS["transactions"])
        yield count


REGISTRY.register(_DatabaseTime())


def observe_llm_call(
    *,
    agent: str,
    model: str,
    outcome: str,
    prompt_tokens: int,
    completion_tokens: int,
    cost_usd: float,
) -> None:
    """Count one recorded LLM call (kernel.usage.record_call calls this)."""
    LLM_CALLS.labels(agent, model, outcome).inc()
    if prompt_tokens:
        LLM_TOKENS.labels(agent, model, "prompt").inc(prompt_tokens)
    if completion_tokens:
        LLM_TOKENS.labels(agent, model, "completion").inc(completion_tokens)
    if cost_usd > 0:
        LLM_COST.labels(agent, model).inc(cost_usd)


async def refresh(kernel: Kernel) -> None:
    """Read what lives in the database (queue depth per role) into the gauges; a
    database that does not answer leaves the last values (and counts the error)."""
    from agentos.kernel import errors, views

    try:
        async with kernel.connection() as conn:
            rows = await views.queue_depth(conn)
    except errors.KernelError as exc:
        SCRAPE_ERRORS.inc()
        log.debug("queue depth not read for /metrics: %s", exc)
        return
    QUEUE_DEPTH.clear()
    for r in rows:
        for state in ("ready", "waiting", "running"):
            QUEUE_DEPTH.labels(r["role"], state).set(int(r[state] or 0))


def render() -> tuple[bytes, str]:
    """The exposition text of every metric of this process, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
