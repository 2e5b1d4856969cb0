"""External coding agents as executors of a work stage (see stage.py and base.py)."""

from __future__ import annotations

from agentos.agents.executors.registry import ADAPTERS, get_adapter, resolve_binary
from agentos.agents.executors.stage import run_work_stage

__all__ = ["ADAPTERS", "get_adapter", "resolve_binary", "run_work_stage"]
