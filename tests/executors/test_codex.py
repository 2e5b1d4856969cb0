"""Codex as the worker: the real `codex` CLI against a fake OpenAI Responses server."""

from __future__ import annotations

import os
import signal
import uuid

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


def _setup(fake, home, exec_env):  # type: ignore[no-untyped-def]
    server = fake("responses", final_text=f"I wrote {FILE_NAME}. (the key was {CANARY})")
    write_role(home, "codex", binary=cli_binary("codex"), model="gpt-fake")
    exec_env.update(OPENAI_BASE_URL=f"{server.url}/v1", OPENAI_API_KEY=CANARY)
    return server


def test_codex_writes_commits_and_is_merged_after_review(  # type: ignore[no-untyped-def]
    fake, agents, exec_env, home, db_url
) -> None:
    server = _setup(fake, home, exec_env)
    agents("worker", "cx-worker")
    agents("reviewer", "cx-reviewer")
    token = f"cx-{uuid.uuid4().hex[:8]}"
    tid = create_task(exec_env, f"Write {FILE_NAME} {token}")
    wait_until(lambda: task_status(db_url, tid) == "done", 120, "the task to be done")
    assert git_in(home / "workspace", "show", f"main:{FILE_NAME}") == FILE_TEXT
    rows = query(db_url, "SELECT kind, tool_name, content FROM agentos.steps WHERE task_id = %s "
                 "AND stage = 'work' ORDER BY seq", (tid,))  # fmt: skip
    kinds = [r[0] for r in rows]
    assert {"llm", "tool_call", "tool_result", "note"} <= set(kinds)
    call = next(r for r in rows if r[1] == "command_execution" and r[0] == "tool_call")
    assert FILE_NAME in call[2]["arguments"]["command"]
    usage = query(
        db_url,
        "SELECT sum(prompt_tokens), sum(completion_tokens) FROM "
        "agentos.llm_calls WHERE task_id = %s AND agent = 'cx-worker'",
        (tid,),
    )
    assert usage[0] == (2000, 100)  # two model requests of the fake: 1000 + 1000, 50 + 50
    result = query(db_url, "SELECT result FROM agentos.tasks WHERE id = %s", (tid,))[0][0]
    assert result.startswith(f"I wrote {FILE_NAME}") and "[redacted]" in result
    assert len(server.model_requests()) == 2
    no_canary(db_url)


def test_codex_cancel_and_sigkill_leave_no_process(  # type: ignore[no-untyped-def]
    fake, agents, exec_env, home, db_url
) -> None:
    server = _setup(fake, home, exec_env)
    server.hold()
    worker = agents("worker", "cx-worker")
    token = f"cx-{uuid.uuid4().hex[:8]}"
    tid = create_task(exec_env, f"Write {FILE_NAME} {token}")
    assert server.held.wait(90), "codex never asked the model"
    assert processes_with(token)
    assert cli(exec_env, "task", "cancel", str(tid)).returncode == 0
    wait_until(lambda: not processes_with(token), 20, "the executor to be gone")
    assert task_status(db_url, tid) == "cancelled" and worker.poll() is None

    server.held.clear()
    token2 = f"cx-{uuid.uuid4().hex[:8]}"
    create_task(exec_env, f"Write {FILE_NAME} {token2}")
    assert server.held.wait(90), "codex never asked the model"
    assert processes_with(token2)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(10)
    wait_until(lambda: not processes_with(token2), 20, "the executor to be gone")
    server.release()


def test_a_task_taken_over_resumes_the_codex_thread(  # type: ignore[no-untyped-def]
    fake, agents, exec_env, home, db_url
) -> None:
    server = _setup(fake, home, exec_env)
    server.hold(after=1)
    first = agents("worker", "cx-first")
    agents("reviewer", "cx-reviewer")
    token = f"cx-{uuid.uuid4().hex[:8]}"
    tid = create_task(exec_env, f"Write {FILE_NAME} {token}")
    assert server.held.wait(90), "codex never came back after its command"
    wait_until(
        lambda: query(
            db_url,
            "SELECT 1 FROM agentos.steps WHERE task_id = %s AND kind = 'note' "
            "AND content ? 'session_id'",
            (tid,),
        ),
        30,
        "the session note",
    )
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    wait_until(lambda: not processes_with(token), 20, "the first executor to be gone")
    before = len(server.model_requests())
    server.release()
    agents("worker", "cx-second")
    wait_until(lambda: task_status(db_url, tid) == "done", 120, "the task to be done")
    resumed = server.model_requests()[before:]
    assert resumed and "call_fake1" in resumed[0].raw  # the first run's command, resumed
    sessions = query(
        db_url,
        "SELECT DISTINCT content->>'session_id' FROM agentos.steps "
        "WHERE task_id = %s AND content->>'session_id' IS NOT NULL",
        (tid,),
    )
    assert len(sessions) == 1
    assert git_in(home / "workspace", "show", f"main:{FILE_NAME}") == FILE_TEXT
    no_canary(db_url)
