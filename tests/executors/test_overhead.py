"""The overhead AgentOS adds around one executor run, per CLI (docs/benchmarks.md).

Skipped unless AGENTOS_EXECUTOR_BENCH=1. For each CLI: one task run by a real worker
process against the fake model server, and the same CLI started bare (no AgentOS, no
sandbox) with the adapter's own command line, N times each. It prints, in seconds:
  start   the stage's first step (the task claimed, the prompt rendered) -> the
          CLI's first model request, through AgentOS
  bare    the CLI started directly -> its first model request (the CLI's own boot)
  end     the fake's last answer -> the task in review (events recorded, the commit,
          submit_for_review)
Run: AGENTOS_EXECUTOR_BENCH=1 pytest tests/executors/test_overhead.py -q -s
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from agentos.agents.config import ExecutorOptions
from agentos.agents.executors import get_adapter
from agentos.agents.executors.base import Plan
from conftest import CANARY, cli_binary, create_task, query, task_status, wait_until, write_role

RUNS = int(os.environ.get("AGENTOS_EXECUTOR_BENCH_RUNS", "3"))
SETUPS: dict[str, dict[str, Any]] = {
    "claude-code": {"api": "anthropic", "options": {"max_turns": 8},
                    "env": lambda u: {"ANTHROPIC_BASE_URL": u, "ANTHROPIC_API_KEY": CANARY}},
    "codex": {"api": "responses", "options": {"model": "gpt-fake"},
              "env": lambda u: {"OPENAI_BASE_URL": f"{u}/v1", "OPENAI_API_KEY": CANARY}},
    "opencode": {"api": "chat", "options": {"model": "gpt-fake"},
                 "env": lambda u: {"OPENAI_BASE_URL": f"{u}/v1", "OPENAI_API_KEY": CANARY}},
    "gemini-cli": {"api": "gemini", "options": {"model": "gemini-fake"},
                   "env": lambda u: {"GOOGLE_GEMINI_BASE_URL": u, "GEMINI_API_KEY": CANARY}},
    "aider": {"api": "chat-text", "fake": {"api_text_edits": True},
              "options": {"model": "openai/gpt-fake", "args": ["--edit-format", "whole"]},
              "env": lambda u: {"OPENAI_BASE_URL": f"{u}/v1", "OPENAI_API_KEY": CANARY}},
}  # fmt: skip

pytestmark = pytest.mark.skipif(
    os.environ.get("AGENTOS_EXECUTOR_BENCH") != "1", reason="set AGENTOS_EXECUTOR_BENCH=1"
)


def _bare(executor: str, fake, tmp: Path) -> float:  # type: ignore[no-untyped-def]
    s = SETUPS[executor]
    server = fake(s["api"], **s.get("fake", {}))
    wt, home = tmp / f"bare-wt-{uuid.uuid4().hex[:6]}", tmp / f"bare-home-{uuid.uuid4().hex[:6]}"
    wt.mkdir()
    home.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=wt, check=True)
    adapter = get_adapter(executor)
    environ = {"PATH": os.environ["PATH"], "HOME": str(home), **s["env"](server.url)}
    plan = Plan(binary=cli_binary(executor), prompt="Write hello.txt", prompt_file=home / "p",
                worktree=wt, home=home, task_id=1, options=ExecutorOptions(**s["options"]),
                session_id=str(uuid.uuid4()) if adapter.chooses_session else None,
                environ=environ)  # fmt: skip
    adapter.prepare(plan)
    env = {**environ, **adapter.env(plan)}
    t0 = time.time()
    subprocess.run(adapter.argv(plan), cwd=wt, env=env, stdin=subprocess.DEVNULL,
                   capture_output=True, timeout=180)  # fmt: skip
    first = server.model_requests()[0].at
    return first - t0


@pytest.mark.parametrize("executor", list(SETUPS))
def test_overhead(executor, fake, agents, exec_env, home, db_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = SETUPS[executor]
    server = fake(s["api"], **s.get("fake", {}))
    write_role(home, executor, binary=cli_binary(executor), **s["options"])
    exec_env.update(s["env"](server.url))
    agents("worker", "bench-worker")
    starts, ends = [], []
    for _ in range(RUNS):
        before = len(server.model_requests())
        tid = create_task(exec_env, f"Write hello.txt {uuid.uuid4().hex[:6]}")
        wait_until(lambda t=tid: task_status(db_url, t) == "review", 180, "review")
        reqs = server.model_requests()[before:]
        (first_step,) = query(db_url, "SELECT extract(epoch FROM min(created_at)) FROM "
                              "agentos.steps WHERE task_id = %s", (tid,))[0]  # fmt: skip
        (submitted,) = query(db_url, "SELECT extract(epoch FROM max(created_at)) FROM "
                             "agentos.steps WHERE task_id = %s AND kind = 'tool_result' "
                             "AND tool_name = 'submit_for_review'", (tid,))[0]  # fmt: skip
        starts.append(reqs[0].at - float(first_step))
        ends.append(float(submitted) - server.answered[-1])
    bare = [_bare(executor, fake, tmp_path) for _ in range(RUNS)]
    med = statistics.median
    print(f"\nEXECUTOR-OVERHEAD {executor}: start {med(starts):.2f} s (bare CLI {med(bare):.2f} s,"
          f" AgentOS {med(starts) - med(bare):+.2f} s), end {med(ends):.2f} s; runs={RUNS}"
          f" starts={[round(x, 2) for x in starts]} ends={[round(x, 2) for x in ends]}"
          f" bare={[round(x, 2) for x in bare]}")  # fmt: skip
