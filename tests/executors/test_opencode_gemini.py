"""OpenCode and Gemini CLI as the worker: the real CLIs against fake model servers
(chat completions for OpenCode, the Gemini API for Gemini CLI)."""

from __future__ import annotations

import os
import signal
import uuid
from typing import Any

import pytest
from conftest import (
    CANARY,
    cli,
    cli_binary,
    create_task,
    git_in,
    no_canary,
    processes_with,
    query,
    task_status,
    wait_until,
    write_role,
)
from fakes import FILE_NAME, FILE_TEXT

SETUPS: dict[str, dict[str, Any]] = {
    "opencode": {"api": "chat", "model": "gpt-fake",
                 "env": lambda url: {"OPENAI_BASE_URL": f"{url}/v1", "OPENAI_API_KEY": CANARY}},
    "gemini-cli": {"api": "gemini", "model": "gemini-fake",
                   "env": lambda url: {"GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": CANARY}},
}  # fmt: skip


def _setup(executor, fake, home, exec_env):  # type: ignore[no-untyped-def]
    s = SETUPS[executor]
    server = fake(s["api"], final_text=f"I wrote {FILE_NAME}. (the key was {CANARY})")
    write_role(home, executor, binary=cli_binary(executor), model=s["model"])
    exec_env.update(s["env"](server.url))
    return server


@pytest.mark.parametrize("executor", list(SETUPS))
def test_cli_writes_commits_and_is_merged_after_review(  # type: ignore[no-untyped-def]
    executor, fake, agents, exec_env, home, db_url
) -> None:
    server = _setup(executor, fake, home, exec_env)
    agents("worker", "x-worker")
    agents("reviewer", "x-reviewer")
    token = f"x-{uuid.uuid4().hex[:8]}"
    tid = create_task(exec_env, f"Write {FILE_NAME} {token}")
    wait_until(lambda: task_status(db_url, tid) in ("done", "blocked"), 150, "the task to end")
    error = query(db_url, "SELECT error FROM agentos.tasks WHERE id = %s", (tid,))[0][0]
    assert task_status(db_url, tid) == "done", error
    assert git_in(home / "workspace", "show", f"main:{FILE_NAME}") == FILE_TEXT
    kinds = {r[0] for r in query(db_url, "SELECT kind FROM agentos.steps WHERE task_id = %s "
                                 "AND stage = 'work'", (tid,))}  # fmt: skip
    assert {"llm", "tool_call", "tool_result", "note"} <= kinds
    usage = query(
        db_url,
        "SELECT sum(prompt_tokens), sum(completion_tokens) FROM "
        "agentos.llm_calls WHERE task_id = %s AND agent = 'x-worker'",
        (tid,),
    )
    assert usage[0][0] and usage[0][0] > 0 and usage[0][1] > 0
    result = query(db_url, "SELECT result FROM agentos.tasks WHERE id = %s", (tid,))[0][0]
    assert result.startswith(f"I wrote {FILE_NAME}") and "[redacted]" in result
    assert len(server.model_requests()) >= 2
    no_canary(db_url)


@pytest.mark.parametrize("executor", list(SETUPS))
def test_cli_cancel_and_sigkill_leave_no_process(  # type: ignore[no-untyped-def]
    executor, fake, agents, exec_env, home, db_url
) -> None:
    server = _setup(executor, fake, home, exec_env)
    server.hold()
    worker = agents("worker", "x-worker")
    token = f"x-{uuid.uuid4().hex[:8]}"
    tid = create_task(exec_env, f"Write {FILE_NAME} {token}")
    assert server.held.wait(90), f"{executor} never asked the model"
    assert processes_with(token)
    assert cli(exec_env, "task", "cancel", str(tid)).returncode == 0
    wait_until(lambda: not processes_with(token), 20, "the executor to be gone")
    assert task_status(db_url, tid) == "cancelled" and worker.poll() is None

    server.held.clear()
    token2 = f"x-{uuid.uuid4().hex[:8]}"
    create_task(exec_env, f"Write {FILE_NAME} {token2}")
    assert server.held.wait(90), f"{executor} never asked the model"
    assert processes_with(token2)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(10)
    wait_until(lambda: not processes_with(token2), 20, "the executor to be gone")
    server.release()
