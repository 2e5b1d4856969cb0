"""External coding agents as executors of a work or review stage (stage.py, base.py)."""

from __future__ import annotations

from agentos.agents.executors.registry import ADAPTERS, get_adapter, resolve_binary
from agentos.agents.executors.stage import run_review_stage, run_work_stage

__all__ = ["ADAPTERS", "get_adapter", "resolve_binary", "run_review_stage", "run_work_stage"]
