"""Aider as the worker: the real `aider` against a fake chat-completions server that
answers with a whole-file edit (aider edits by text, not by tool calls)."""

from __future__ import annotations

import os
import signal
import uuid

from conftest import (
    CANARY,
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


def _setup(fake, home, exec_env):  # type: ignore[no-untyped-def]
    server = fake("chat-text", api_text_edits=True,
                  final_text=f"I wrote {FILE_NAME}. (the key was {CANARY})")  # fmt: skip
    write_role(home, "aider", binary=cli_binary("aider"), model="openai/gpt-fake",
               args=["--edit-format", "whole"])  # fmt: skip
    exec_env.update(OPENAI_BASE_URL=f"{server.url}/v1", OPENAI_API_KEY=CANARY)
    return server


def test_aider_writes_commits_and_is_merged_after_review(  # type: ignore[no-untyped-def]
    fake, agents, exec_env, home, db_url
) -> None:
    _setup(fake, home, exec_env)
    agents("worker", "ai-worker")
    agents("reviewer", "ai-reviewer")
    tid = create_task(exec_env, f"Write {FILE_NAME} ai-{uuid.uuid4().hex[:8]}")
    wait_until(lambda: task_status(db_url, tid) in ("done", "blocked"), 150, "the task to end")
    error = query(db_url, "SELECT error FROM agentos.tasks WHERE id = %s", (tid,))[0][0]
    assert task_status(db_url, tid) == "done", error
    assert git_in(home / "workspace", "show", f"main:{FILE_NAME}") == FILE_TEXT
    files = git_in(home / "workspace", "ls-tree", "--name-only", "main").split()
    assert not [f for f in files if f.startswith(".aider")]  # its own files stay out
    usage = query(
        db_url,
        "SELECT sum(prompt_tokens), sum(completion_tokens) FROM "
        "agentos.llm_calls WHERE task_id = %s AND agent = 'ai-worker'",
        (tid,),
    )
    assert usage[0] == (800, 30)
    result = query(db_url, "SELECT result FROM agentos.tasks WHERE id = %s", (tid,))[0][0]
    assert "I wrote" in result and "[redacted]" in result
    no_canary(db_url)


def test_sigkill_of_the_agent_leaves_no_aider_process(  # type: ignore[no-untyped-def]
    fake, agents, exec_env, home, db_url
) -> None:
    server = _setup(fake, home, exec_env)
    server.hold()
    worker = agents("worker", "ai-worker")
    token = f"ai-{uuid.uuid4().hex[:8]}"
    create_task(exec_env, f"Write {FILE_NAME} {token}")
    assert server.held.wait(120), "aider never asked the model"
    assert processes_with(token)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(10)
    wait_until(lambda: not processes_with(token), 20, "the executor to be gone")
    server.release()
