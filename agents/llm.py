"""The LLM layer: every call goes through litellm, with fallbacks, retries, budgets and
accounting.

litellm must be imported with LITELLM_LOCAL_MODEL_COST_MAP=True or it reaches for the
network at import; ensure_litellm() sets it and registers the scripted model
(`agentos/scripted`, see scripted.py) as a litellm custom provider.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agentos.agents import metrics
from agentos.agents.config import AgentSettings, RoleConfig
from agentos.kernel import redact
from agentos.kernel.db import Conn, Kernel
from agentos.kernel.usage import (
    BudgetExceeded,
    agent_day_scope,
    record_call,
    reserve,
    settle,
    task_scope,
)

log = logging.getLogger(__name__)

_READY = False


def ensure_litellm() -> Any:
    """Import litellm offline-safe and register our scripted provider; returns the module."""
    global _READY
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    if not _READY:
        from agentos.agents.scripted import ScriptedLLM

        litellm.custom_provider_map = [
            *[p for p in (litellm.custom_provider_map or []) if p.get("provider") != "agentos"],
            {"provider": "agentos", "custom_handler": ScriptedLLM()},
        ]
        for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # register_model warns that a custom model has no cache pricing: true and harmless
        logging.getLogger("LiteLLM").setLevel(logging.ERROR)
        # The scripted model's "price" makes demo costs visible; it is a demo figure.
        litellm.register_model(
            {
                "agentos/scripted": {
                    "input_cost_per_token": 0.000001,
                    "output_cost_per_token": 0.000002,
                    "litellm_provider": "agentos",
                    "mode": "chat",
                    "max_tokens": 8192,
                }
            }
        )
        litellm.suppress_debug_info = True
        logging.getLogger("LiteLLM").setLevel(logging.WARNING)
        _READY = True
    return litellm


@dataclass
class ChatResult:
    """What one call produced."""

    content: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: int = 0


class LLMClient:
    """Calls models for agents: budget reservation, fallbacks, usage rows."""

    def __init__(self, kernel: Kernel, settings: AgentSettings) -> None:
        self.kernel = kernel
        self.settings = settings

    async def chat(
        self,
        *,
        agent: str,
        role: RoleConfig,
        task_id: int | None,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        task_budget_usd: float | None = None,
        model: str | None = None,
        on_reply: Callable[[Conn, ChatResult], Awaitable[None]] | None = None,
    ) -> ChatResult:
        """One completion; BudgetExceeded when a budget would be overshot.

        on_reply(conn, result) writes what the caller keeps of the reply in the
        transaction that accounts for the call (one commit for both, the flush waited
        for). It runs under a savepoint: if it fails (a lost lease), the call's cost is
        committed all the same and its error is raised after."""
        litellm = ensure_litellm()
        # what the rows held is redacted already; this is the last gate before a model:
        # no registered secret is ever sent (kernel/redact.py)
        messages, tools = redact.redact(messages), redact.redact(tools)
        limits = role.limits
        scopes = [(agent_day_scope(agent), limits.agent_daily_budget_usd)]
        if task_id is not None:
            scopes.append(
                (
                    task_scope(task_id),
                    task_budget_usd if task_budget_usd is not None else limits.task_budget_usd,
                )
            )
        models = [model] if model else [role.model, *role.fallbacks]
        try:
            async with self.kernel.connection() as conn:
                # on its own: a reservation lost in a server crash frees the estimate only
                reservation = await reserve(
                    conn, scopes, limits.call_estimate_usd, wait_for_flush=False
                )
        except BudgetExceeded as exc:
            # recorded in its own transaction: the refused one is rolled back
            async with self.kernel.connection() as conn:
                await record_call(
                    conn,
                    agent=agent,
                    role=role.name,
                    task_id=task_id,
                    model=models[0],
                    prompt_tokens=0,
                    completion_tokens=0,
                    cost_usd=0,
                    latency_ms=0,
                    outcome="budget",
                    error=str(exc),
                )
            raise
        extra: dict[str, Any] = {}
        if self.settings.llm_base_url:
            extra["api_base"] = self.settings.llm_base_url
        if self.settings.llm_api_key is not None:
            extra["api_key"] = self.settings.llm_api_key.get_secret_value()
        last_error: Exception | None = None
        for name in models:
            t0 = time.perf_counter()
            try:
                resp = await litellm.acompletion(
                    model=name,
                    messages=messages,
                    tools=tools or None,
                    temperature=role.temperature,
                    max_tokens=limits.max_tokens_per_call,
                    num_retries=2,
                    timeout=600,
                    **extra,
                )
            except Exception as exc:
                last_error = exc
                latency = int((time.perf_counter() - t0) * 1000)
                metrics.LLM_SECONDS.labels(name, "error").observe(latency / 1000)
                log.warning(
                    "%s: model %s failed: %s",
                    agent,
                    name,
                    str(exc).splitlines()[0][:300],
                    extra={
                        "action": "llm.error",
                        "agent": agent,
                        "task": task_id,
                        "duration_ms": latency,
                    },
                )
                async with self.kernel.connection() as conn:
                    await record_call(
                        conn,
                        agent=agent,
                        role=role.name,
                        task_id=task_id,
                        model=name,
                        prompt_tokens=0,
                        completion_tokens=0,
                        cost_usd=0,
                        latency_ms=latency,
                        outcome="error",
                        error=str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__,
                    )
                continue
            latency = int((time.perf_counter() - t0) * 1000)
            metrics.LLM_SECONDS.labels(name, "ok").observe(latency / 1000)
            try:
                cost = float(litellm.completion_cost(completion_response=resp) or 0.0)
            except Exception:
                cost = 0.0  # a model missing from the cost map: tokens are still recorded
            usage = getattr(resp, "usage", None)
            msg = resp.choices[0].message
            calls = []
            for tc in getattr(msg, "tool_calls", None) or []:
                calls.append(
                    {
                        "id": tc.id,
                        "type": "function",
                        "function": {
                            "name": tc.function.name,
                            "arguments": tc.function.arguments or "{}",
                        },
                    }
                )
            result = ChatResult(
                content=msg.content or "",
                tool_calls=calls,
                model=name,
                prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                cost_usd=cost,
                latency_ms=latency,
            )
            failed: Exception | None = None
            async with self.kernel.connection() as conn:
                await settle(conn, reservation, cost)
                await record_call(
                    conn,
                    agent=agent,
                    role=role.name,
                    task_id=task_id,
                    model=name,
                    prompt_tokens=result.prompt_tokens,
                    completion_tokens=result.completion_tokens,
                    cost_usd=cost,
                    latency_ms=latency,
                    outcome="ok",
                )
                if on_reply is not None:
                    try:
                        async with conn.transaction():  # a savepoint
                            await on_reply(conn, result)
                    except Exception as exc:  # the cost stays recorded; raised below
                        failed = exc
            if failed is not None:
                raise failed
            return result
        async with self.kernel.connection() as conn:
            await settle(conn, reservation, 0.0)
        raise LLMUnavailable(f"every model failed ({', '.join(models)}): {last_error}")


class LLMUnavailable(Exception):
    """No model answered (after retries and fallbacks)."""
