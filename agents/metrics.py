"""The agents' Prometheus metrics, on the kernel's registry (kernel/metrics.py): how
stages end, how long LLM calls take, executor runs. LLM calls, tokens and cost are
counted by the kernel where they are recorded (kernel.usage.record_call), so calls made
by the loop and usage reported by executors are counted alike."""

from __future__ import annotations

from agentos.kernel.metrics import REGISTRY
from prometheus_client import Counter, Histogram

STAGE_OUTCOMES = Counter(
    "agentos_stage_outcomes",
    "How agents' stages ended: submit_for_review, approve, reject, plan_done, "
    "complete_goal, blocked, cancelled, lost, ...",
    ["role", "outcome"],
    registry=REGISTRY,
)
LLM_SECONDS = Histogram(
    "agentos_llm_call_seconds",
    "Latency of one LLM call through litellm (retries included), by model and outcome",
    ["model", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)
EXECUTOR_RUNS = Counter(
    "agentos_executor_runs",
    "External coding-agent runs of a work stage, by executor and how the stage ended",
    ["executor", "outcome"],
    registry=REGISTRY,
)
EXECUTOR_SECONDS = Histogram(
    "agentos_executor_run_seconds",
    "Wall time of one executor run (the CLI started to the stage's end)",
    ["executor"],
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)
