"""The `command` executor: any CLI, here a small Python program, run like the others."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from conftest import cli, no_canary, query, task_status, wait_until, write_role

PROGRAM = r"""
import json, os, sys
prompt = open(sys.argv[1]).read()
assert "Task #" in prompt, prompt
open("hello.txt", "w").write("hello from a command\n")
print("env:", " ".join(sorted(os.environ)))
print(json.dumps({"type": "usage", "model": "my-agent", "prompt_tokens": 7,
                  "completion_tokens": 3, "cost_usd": 0.001}))
print(json.dumps({"type": "result", "result": "wrote hello.txt as asked"}))
"""


def test_a_command_executor_runs_in_the_worktree_and_goes_to_review(  # type: ignore[no-untyped-def]
    agents, exec_env, home, db_url
) -> None:
    write_role(
        home,
        "command",
        command=[sys.executable, "-c", PROGRAM, "{prompt_file}"],
        pass_env=["MY_AGENT_SETTING"],
    )
    exec_env.update(MY_AGENT_SETTING="on", SOME_OTHER_SETTING="off")
    agents("worker", "cmd-worker")
    agents("reviewer", "cmd-reviewer")
    r = cli(exec_env, "task", "create", f"Write hello.txt {uuid.uuid4().hex[:6]}", "--json")
    assert r.returncode == 0, r.stderr
    tid = int(json.loads(r.stdout)["id"])
    wait_until(lambda: task_status(db_url, tid) == "done", 90, "the task to be done")
    shown = subprocess.run(
        ["git", "show", "main:hello.txt"], cwd=Path(home / "workspace"),
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert shown == "hello from a command\n"
    text = query(db_url, "SELECT content->>'content' FROM agentos.steps WHERE task_id = %s "
                 "AND kind = 'llm'", (tid,))[0][0]  # fmt: skip
    names = text.split("env:", 1)[1].split()
    assert "MY_AGENT_SETTING" in names and "HOME" in names
    assert "SOME_OTHER_SETTING" not in names and "AGENTOS_DATABASE_URL" not in names
    assert not [n for n in names if n.startswith("AGENTOS_")]
    assert query(db_url, "SELECT result FROM agentos.tasks WHERE id = %s", (tid,))[0][0] == (
        "wrote hello.txt as asked"
    )
    usage = query(
        db_url,
        "SELECT model, prompt_tokens, completion_tokens, cost_usd "
        "FROM agentos.llm_calls WHERE task_id = %s AND agent = 'cmd-worker'",
        (tid,),
    )
    assert [(m, p, c, float(x)) for m, p, c, x in usage] == [("my-agent", 7, 3, 0.001)]
    no_canary(db_url)


def test_a_missing_program_blocks_the_task_with_the_reason(  # type: ignore[no-untyped-def]
    agents, exec_env, home, db_url
) -> None:
    write_role(home, "command", command=["/nonexistent/agent-cli", "{prompt}"])
    agents("worker", "cmd-worker")
    r = cli(exec_env, "task", "create", "Anything", "--json")
    tid = int(json.loads(r.stdout)["id"])
    wait_until(lambda: task_status(db_url, tid) == "blocked", 60, "the task to be blocked")
    error = query(db_url, "SELECT error FROM agentos.tasks WHERE id = %s", (tid,))[0][0]
    assert "program was not found" in error and "/nonexistent/agent-cli" in error
