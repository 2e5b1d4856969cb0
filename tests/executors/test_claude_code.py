"""Claude Code as the worker: the real `claude` CLI against a fake Anthropic server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

from conftest import (
    CANARY,
    cli,
    cli_binary,
    no_canary,
    processes_with,
    query,
    task_status,
    wait_until,
    write_role,
)
from fakes import FILE_NAME, FILE_TEXT


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


def _setup(fake, home: Path, exec_env: dict[str, str], **options: object) -> object:  # type: ignore[no-untyped-def]
    server = fake("anthropic", final_text=f"I wrote {FILE_NAME}. (the key was {CANARY})")
    write_role(home, "claude-code", binary=cli_binary("claude-code"), max_turns=8, **options)
    exec_env.update(ANTHROPIC_BASE_URL=server.url, ANTHROPIC_API_KEY=CANARY)
    return server


def _create(exec_env: dict[str, str], title: str) -> int:
    r = cli(exec_env, "task", "create", title, "--role", "worker", "--json",
            "-a", f"{FILE_NAME} exists")  # fmt: skip
    assert r.returncode == 0, r.stderr
    return int(json.loads(r.stdout)["id"])


def test_claude_code_writes_commits_and_is_merged_after_review(  # type: ignore[no-untyped-def]
    fake, agents, exec_env, home, db_url
) -> None:
    server = _setup(fake, home, exec_env)
    agents("worker", "cc-worker")
    agents("reviewer", "cc-reviewer")
    token = f"cc-{uuid.uuid4().hex[:8]}"
    tid = _create(exec_env, f"Write {FILE_NAME} {token}")
    wait_until(lambda: task_status(db_url, tid) == "done", 120, "the task to be done")

    repo = home / "workspace"
    assert FILE_NAME in _git(repo, "show", "--stat", "--format=%s", f"agentos/task-{tid}")
    assert _git(repo, "show", f"main:{FILE_NAME}") == FILE_TEXT
    kinds = [r[0] for r in query(db_url, "SELECT kind FROM agentos.steps WHERE task_id = %s "
                                 "AND stage = 'work' ORDER BY seq", (tid,))]  # fmt: skip
    assert kinds[:2] == ["system", "user"]
    assert {"llm", "tool_call", "tool_result", "note"} <= set(kinds)
    calls = query(db_url, "SELECT tool_name, content FROM agentos.steps WHERE task_id = %s "
                  "AND kind = 'tool_call' ORDER BY seq", (tid,))  # fmt: skip
    assert calls[0][0] == "Write" and calls[0][1]["arguments"]["file_path"].endswith(FILE_NAME)
    assert calls[-1][0] == "submit_for_review"
    sessions = query(db_url, "SELECT content->>'session_id' FROM agentos.steps WHERE task_id = %s "
                     "AND kind = 'note' AND content ? 'session_id'", (tid,))  # fmt: skip
    assert len({s[0] for s in sessions}) == 1
    usage = query(
        db_url,
        "SELECT sum(prompt_tokens), sum(completion_tokens), sum(cost_usd) "
        "FROM agentos.llm_calls WHERE task_id = %s AND agent = 'cc-worker'",
        (tid,),
    )
    prompt, completion, cost = usage[0]
    assert prompt == 2400 and completion == 80 and float(cost) > 0  # the CLI's own totals
    spent = query(db_url, "SELECT spent_usd FROM agentos.budgets WHERE scope = %s",
                  (f"task:{tid}",))  # fmt: skip
    assert float(spent[0][0]) >= float(cost)
    steps_log = query(
        db_url,
        "SELECT count(*) FROM agentos.activities WHERE kind = 'agent.step' "
        "AND task_id = %s AND data->>'executor' = 'claude-code'",
        (tid,),
    )
    assert steps_log[0][0] >= 2
    result = query(db_url, "SELECT result FROM agentos.tasks WHERE id = %s", (tid,))[0][0]
    assert result.startswith(f"I wrote {FILE_NAME}") and "[redacted]" in result
    no_canary(db_url)
    assert len(server.model_requests()) == 2
    assert not processes_with(token)


def test_cancel_kills_the_claude_process_group(  # type: ignore[no-untyped-def]
    fake, agents, exec_env, home, db_url
) -> None:
    server = _setup(fake, home, exec_env)
    server.hold()
    worker = agents("worker", "cc-worker")
    token = f"cc-{uuid.uuid4().hex[:8]}"
    tid = _create(exec_env, f"Write {FILE_NAME} {token}")
    assert server.held.wait(90), "claude never asked the model"
    assert processes_with(token), "no executor process while it waits on the model"
    r = cli(exec_env, "task", "cancel", str(tid))
    assert r.returncode == 0, r.stderr
    wait_until(lambda: not processes_with(token), 20, "the executor to be gone")
    server.release()
    assert task_status(db_url, tid) == "cancelled"
    assert worker.poll() is None  # the agent itself goes on
    no_canary(db_url)


def test_sigkill_of_the_agent_leaves_no_claude_process(  # type: ignore[no-untyped-def]
    fake, agents, exec_env, home, db_url
) -> None:
    server = _setup(fake, home, exec_env)
    server.hold()
    worker = agents("worker", "cc-worker")
    token = f"cc-{uuid.uuid4().hex[:8]}"
    _create(exec_env, f"Write {FILE_NAME} {token}")
    assert server.held.wait(90), "claude never asked the model"
    assert processes_with(token)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(10)
    wait_until(lambda: not processes_with(token), 20, "the executor to be gone")
    server.release()


def test_a_task_taken_over_resumes_the_claude_session(  # type: ignore[no-untyped-def]
    fake, agents, exec_env, home, db_url
) -> None:
    server = _setup(fake, home, exec_env)
    server.hold(after=1)  # the write is answered; the turn after its result waits
    first = agents("worker", "cc-first")
    agents("reviewer", "cc-reviewer")
    token = f"cc-{uuid.uuid4().hex[:8]}"
    tid = _create(exec_env, f"Write {FILE_NAME} {token}")
    assert server.held.wait(90), "claude never came back after its tool call"
    wait_until(
        lambda: query(
            db_url,
            "SELECT 1 FROM agentos.steps WHERE task_id = %s AND kind = 'tool_result'",
            (tid,),
        ),
        30,
        "the tool result step",
    )
    # and in Claude Code's own session file (written a moment later on a busy machine):
    # what a resume reads back; killed before it, the second run rightly starts afresh
    projects = home / "executors" / f"task-{tid}" / ".claude" / "projects"

    def in_session_file() -> bool:
        return any(
            "tool_result" in f.read_text(errors="replace") for f in projects.glob("*/*.jsonl")
        )

    wait_until(in_session_file, 30, "the tool result in claude's session file")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    wait_until(lambda: not processes_with(token), 20, "the first executor to be gone")
    before = len(server.model_requests())
    server.release()
    agents("worker", "cc-second")
    wait_until(lambda: task_status(db_url, tid) == "done", 120, "the task to be done")

    resumed = server.model_requests()[before:]
    assert resumed, "the second agent never asked the model"
    # the resumed conversation carries the first run's tool call and its result
    assert "toolu_fake1" in resumed[0].raw and "tool_result" in resumed[0].raw
    sessions = query(db_url, "SELECT DISTINCT content->>'session_id' FROM agentos.steps "
                     "WHERE task_id = %s AND content ? 'session_id'", (tid,))  # fmt: skip
    assert len(sessions) == 1
    assert resumed[0].headers.get("X-Claude-Code-Session-Id") == sessions[0][0]
    writes = query(
        db_url,
        "SELECT count(*) FROM agentos.steps WHERE task_id = %s "
        "AND tool_call_id = 'toolu_fake1' AND kind = 'tool_call'",
        (tid,),
    )
    assert writes[0][0] == 1  # not recorded twice
    agents_seen = query(db_url, "SELECT DISTINCT agent FROM agentos.steps WHERE task_id = %s "
                        "AND stage = 'work'", (tid,))  # fmt: skip
    assert {a[0] for a in agents_seen} == {"cc-first", "cc-second"}
    assert _git(home / "workspace", "show", f"main:{FILE_NAME}") == FILE_TEXT
    no_canary(db_url)


def test_claude_code_as_the_reviewer_rejects_then_approves_and_merges(  # type: ignore[no-untyped-def]
    fake, agents, exec_env, home, db_url
) -> None:
    """The review stage run by Claude Code: the check runs first, the CLI's verdict (a
    JSON last line) rejects with feedback the worker's next prompt carries, then
    approves, and the merge is the worker's commit, untouched by the reviewer."""
    worker_server = _setup(fake, home, exec_env)
    feedback = f"Add a trailing newline check {uuid.uuid4().hex[:6]}"
    review_server = fake(
        "anthropic",
        text_only=True,
        verdicts=[
            "I read the diff.\n" + json.dumps({"verdict": "reject", "feedback": feedback}),
            "Fixed now.\n" + json.dumps({"verdict": "approve", "comment": "meets the criteria"}),
        ],
    )
    (home / "roles" / "reviewer.yaml").write_text(
        "executor: claude-code\n"
        f"executor_options: {{binary: {cli_binary('claude-code')}, max_turns: 4}}\n"
    )
    agents("worker", "cc-worker")
    agents("reviewer", "cc-reviewer", ANTHROPIC_BASE_URL=review_server.url)
    tid = _create(exec_env, f"Write {FILE_NAME} reviewed {uuid.uuid4().hex[:6]}")
    wait_until(lambda: task_status(db_url, tid) == "done", 180, "the task to be done")

    repo = home / "workspace"
    assert _git(repo, "show", f"main:{FILE_NAME}") == FILE_TEXT
    rejections, metadata = query(
        db_url, "SELECT rejections, metadata FROM agentos.tasks WHERE id = %s", (tid,)
    )[0]
    assert rejections == 1 and metadata["merged"]
    # the reviewer ran as Claude Code: its stage has the CLI's steps and both verdicts
    verdicts = query(db_url, "SELECT tool_name, content->'arguments' FROM agentos.steps "
                     "WHERE task_id = %s AND stage = 'review' AND kind = 'tool_call' "
                     "AND tool_name IN ('approve', 'reject') ORDER BY seq", (tid,))  # fmt: skip
    assert [v[0] for v in verdicts] == ["reject", "approve"]
    assert verdicts[0][1] == {"feedback": feedback}
    # the rejection's feedback reached the worker's second run of Claude Code
    assert any(feedback in r.raw for r in worker_server.model_requests()), "no feedback"
    assert len(review_server.model_requests()) >= 2
    usage = query(db_url, "SELECT count(*) FROM agentos.llm_calls WHERE task_id = %s "
                  "AND agent = 'cc-reviewer'", (tid,))  # fmt: skip
    assert usage[0][0] >= 2
    no_canary(db_url)


def test_a_reviewer_without_a_verdict_blocks_the_task_with_its_message(  # type: ignore[no-untyped-def]
    fake, agents, exec_env, home, db_url
) -> None:
    _setup(fake, home, exec_env)
    review_server = fake("anthropic", text_only=True, final_text="Looks fine to me, I think.")
    (home / "roles" / "reviewer.yaml").write_text(
        "executor: claude-code\n"
        f"executor_options: {{binary: {cli_binary('claude-code')}, max_turns: 4}}\n"
    )
    agents("worker", "cc-worker")
    agents("reviewer", "cc-reviewer", ANTHROPIC_BASE_URL=review_server.url)
    tid = _create(exec_env, f"Write {FILE_NAME} unjudged {uuid.uuid4().hex[:6]}")
    wait_until(lambda: task_status(db_url, tid) == "blocked", 180, "the task to be blocked")
    (error,) = query(db_url, "SELECT error FROM agentos.tasks WHERE id = %s", (tid,))[0]
    assert "gave no verdict" in error and "Looks fine to me" in error
    assert FILE_NAME not in _git(home / "workspace", "ls-tree", "--name-only", "main")


def test_the_task_budget_stops_claude_mid_run_and_a_retry_with_budget_finishes(  # type: ignore[no-untyped-def]
    fake, agents, exec_env, home, db_url
) -> None:
    """A task budget smaller than one model call: the run is stopped after its first
    reported usage (AgentOS's kill, or Claude Code's own --max-budget-usd cap, whichever
    comes first), the task blocks for its budget with no CLI process left, and
    `task retry --budget` lets it finish."""
    server = _setup(
        fake,
        home,
        exec_env,
        model="claude-3-5-sonnet-20241022",  # priced in litellm's map
    )
    roles = home / "roles"
    worker = (roles / "worker.yaml").read_text()
    (roles / "worker.yaml").write_text(
        worker + "limits: {task_budget_usd: 0.002, call_estimate_usd: 0.0}\n"
    )
    agents("worker", "cc-worker")
    agents("reviewer", "cc-reviewer")
    token = f"cc-{uuid.uuid4().hex[:8]}"
    tid = _create(exec_env, f"Write {FILE_NAME} {token}")
    wait_until(lambda: task_status(db_url, tid) == "blocked", 120, "the budget to block it")
    (error,) = query(db_url, "SELECT error FROM agentos.tasks WHERE id = %s", (tid,))[0]
    assert "budget" in error, error
    wait_until(lambda: not processes_with(token), 20, "no claude process left")
    spent = query(db_url, "SELECT sum(cost_usd) FROM agentos.llm_calls WHERE task_id = %s",
                  (tid,))[0][0]  # fmt: skip
    assert spent is not None and float(spent) > 0.002  # the call that broke the budget
    calls_before = len(server.model_requests())
    r = cli(exec_env, "task", "retry", str(tid), "--budget", "5")
    assert r.returncode == 0, r.stderr
    wait_until(lambda: task_status(db_url, tid) == "done", 120, "the task to be done")
    assert len(server.model_requests()) > calls_before
    assert _git(home / "workspace", "show", f"main:{FILE_NAME}") == FILE_TEXT
