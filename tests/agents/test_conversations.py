"""Talking to the team end to end: real `agentos agent run` processes, the real CLI in
subprocesses, real PostgreSQL, the scripted model (which answers with what it was shown)
and a local OpenAI-compatible server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg


def _cli(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentos.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _alive(wait_for: Any, *names: str) -> None:
    wait_for(
        "SELECT name FROM agentos.agent_status WHERE alive AND name = ANY(%s)",
        lambda rows: len(rows) == len(names),
        timeout=60,
        params=(list(names),),
    )


def _rows(db_url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()


def test_a_persons_question_is_answered_and_read_with_message_list(
    spawn: Any, wait_for: Any, team_env: dict[str, str], db_url: str
) -> None:
    spawn("worker", "w-talk")
    _alive(wait_for, "w-talk")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE agentos.agents SET memory = 'prefers small commits' WHERE name = 'w-talk'"
        )
    env = {**team_env, "AGENTOS_USER": "alice"}
    # --wait prints the answer when it arrives
    r = _cli(
        env,
        "message",
        "send",
        "--to",
        "w-talk",
        "What are you working on?",
        "--wait",
        "--timeout",
        "60",
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("sent message #") and lines[0].endswith("to w-talk (woke w-talk)")
    asked = int(lines[0].split("#")[1].split()[0])
    assert f"w-talk → alice [answer, re #{asked}]" in lines[1]
    # the agent saw its context, not the message alone: no task, its memory, the question
    assert "My current task: none (you are idle)." in r.stdout
    assert "My memory: prefers small commits." in r.stdout
    assert "You wrote: What are you working on?" in r.stdout
    # a second question without --wait: the answer is read later with `message list`
    r = _cli(env, "message", "send", "--to", "w-talk", "And after that?", "--json")
    assert r.returncode == 0, r.stderr
    second = json.loads(r.stdout)["id"]
    wait_for(
        "SELECT 1 FROM agentos.messages WHERE reply_to = %s AND kind = 'answer'",
        lambda rows: bool(rows),
        timeout=60,
        params=(second,),
    )
    unread = _cli(env, "message", "list", "--unread", "--json")
    assert unread.returncode == 0, unread.stderr
    got = json.loads(unread.stdout)
    assert [(m["from_agent"], m["to_agent"], m["reply_to"], m["read"]) for m in got] == [
        ("w-talk", "alice", second, False)
    ]
    assert "You wrote: And after that?" in got[0]["body"]
    conv = _cli(env, "message", "list", "--with", "w-talk", "--json")
    msgs = json.loads(conv.stdout)
    assert [(m["from_agent"], m["kind"]) for m in msgs] == [
        ("alice", "question"), ("w-talk", "answer"), ("alice", "question"), ("w-talk", "answer"),
    ]  # fmt: skip
    assert all(m["read"] for m in msgs)  # listed, so read
    assert json.loads(_cli(env, "message", "list", "--unread", "--json").stdout) == []
    # each answer was one LLM call of w-talk's, outside any task
    calls = _rows(db_url, "SELECT agent, task_id, outcome FROM agentos.llm_calls ORDER BY id")
    assert calls == [("w-talk", None, "ok"), ("w-talk", None, "ok")]


def test_a_task_message_is_answered_by_its_holder_between_its_steps(
    spawn: Any, wait_for: Any, team_env: dict[str, str], db_url: str
) -> None:
    env = {**team_env, "AGENTOS_USER": "alice"}
    made = _cli(env, "task", "create", "Write the release notes", "--json")
    assert made.returncode == 0, made.stderr
    tid = json.loads(made.stdout)["id"]
    # nobody holds the task yet: the question waits for whoever takes it
    early = _cli(
        env, "message", "send", "--task", str(tid), "Mention the new flag, please", "--json"
    )
    assert early.returncode == 0, early.stderr
    early_msg = json.loads(early.stdout)
    assert early_msg["woken"] == [] and early_msg["task_id"] == tid
    # the worker's model calls wait 4 s once the tests have run: it holds the task meanwhile
    spawn("worker", "w-hold", AGENTOS_SCRIPTED_DELAY="4")
    wait_for(
        "SELECT 1 FROM agentos.steps WHERE task_id = %s AND tool_name = 'run_command' "
        "AND kind = 'tool_result'",
        lambda rows: bool(rows),
        timeout=90,
        params=(tid,),
    )
    # the one who took it answered the early question, and it was in the work's prompt
    first = _rows(
        db_url,
        "SELECT from_agent, to_agent, task_id FROM agentos.messages WHERE reply_to = %s",
        (early_msg["id"],),
    )
    assert first == [("w-hold", "alice", tid)]
    prompt = _rows(
        db_url,
        "SELECT content->>'text' FROM agentos.steps WHERE task_id = %s AND kind = 'user' "
        "ORDER BY id LIMIT 1",
        (tid,),
    )
    assert "- from alice: Mention the new flag, please" in prompt[0][0]
    # now, mid-task, a question on the task's thread wakes its holder, who answers at once
    r = _cli(
        env,
        "message",
        "send",
        "--task",
        str(tid),
        "How far along are you?",
        "--wait",
        "--timeout",
        "60",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].endswith(f"to task #{tid} (woke w-hold)")
    assert f"w-hold → alice on task #{tid} [answer, re #" in r.stdout
    assert f"My current task: #{tid} Write the release notes (in_progress)." in r.stdout
    assert "My last step: tool_result: run_command ok" in r.stdout
    status = _rows(db_url, "SELECT status::text FROM agentos.tasks WHERE id = %s", (tid,))
    assert status == [("in_progress",)]  # answered while still working, not after
    wait_for(
        "SELECT status::text FROM agentos.tasks WHERE id = %s",
        lambda rows: rows[0][0] == "review",
        timeout=90,
        params=(tid,),
    )
    thread = json.loads(_cli(env, "message", "list", "--task", str(tid), "--json").stdout)
    assert [(m["from_agent"], m["kind"]) for m in thread] == [
        ("alice", "question"), ("w-hold", "answer"), ("alice", "question"), ("w-hold", "answer"),
    ]  # fmt: skip
    # the answers were paid from the task's budget, like its work
    calls = _rows(
        db_url,
        "SELECT count(*) FROM agentos.llm_calls WHERE agent = 'w-hold' AND task_id = %s",
        (tid,),
    )
    assert calls[0][0] >= 6  # 4 work turns and 2 answers


def test_a_channel_mention_wakes_only_its_members(
    wait_for: Any, team_env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    log = open(tmp_path / "ch.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentos.cli.main", "agent", "run", "--role", "worker",
         "--name", "ch", "--concurrency", "3"],
        env=team_env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _alive(wait_for, "ch-1", "ch-2", "ch-3")
        env = {**team_env, "AGENTOS_USER": "alice"}
        made = _cli(env, "channel", "create", "ops", "--members", "ch-1,ch-2")
        assert made.returncode == 0 and made.stdout.strip() == "channel ops: alice, ch-1, ch-2"
        # ch-1: member, mentioned. ch-2: member, not mentioned. ch-3: mentioned, not a member
        r = _cli(
            env,
            "channel",
            "post",
            "ops",
            "@ch-1 and @ch-3: is main green?",
            "--wait",
            "--timeout",
            "60",
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0].endswith("to #ops (woke ch-1)")
        assert "ch-1 → alice on #ops [answer, re #" in r.stdout
        quiet = _cli(env, "channel", "post", "ops", "nobody needs to answer this", "--json")
        assert json.loads(quiet.stdout)["woken"] == []
        time.sleep(3)  # time enough for a wrongly woken agent to answer
        answers = _rows(db_url, "SELECT from_agent FROM agentos.messages WHERE kind = 'answer'")
        assert answers == [("ch-1",)]
        calls = _rows(db_url, "SELECT DISTINCT agent FROM agentos.llm_calls")
        assert calls == [("ch-1",)]
        listed = _cli(env, "channel", "list", "--json")
        assert [(c["name"], c["messages"], c["unread"]) for c in json.loads(listed.stdout)] == [
            ("ops", 3, 0)  # --wait showed alice the answer
        ]
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def test_an_answer_from_a_local_openai_compatible_server(
    spawn: Any, wait_for: Any, team_env: dict[str, str], db_url: str, fake_openai: Any
) -> None:
    server = fake_openai("Nothing yet; I am idle and ready.")
    spawn(
        "reviewer",
        "r-fake",
        AGENTOS_DEMO="0",
        AGENTOS_MODEL="openai/local-model",
        AGENTOS_LLM_BASE_URL=server.url,
        AGENTOS_LLM_API_KEY="sk-local-test",
    )
    _alive(wait_for, "r-fake")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE agentos.agents SET memory = 'the check is make test' WHERE name = 'r-fake'"
        )
    env = {**team_env, "AGENTOS_USER": "bob"}
    r = _cli(
        env, "message", "send", "--to", "r-fake", "Anything to review?", "--wait", "--timeout", "60"
    )
    assert r.returncode == 0, r.stderr
    assert "r-fake → bob [answer, re #" in r.stdout
    assert "    Nothing yet; I am idle and ready." in r.stdout
    chats = [s for s in server.seen if s["path"].endswith("/chat/completions")]
    assert len(chats) == 1 and chats[0]["model"] == "local-model"
    system, user = chats[0]["messages"]
    assert (
        "You are r-fake, the reviewer of an AgentOS team, answering a message." in system["content"]
    )
    assert "Your current task: none (you are idle)." in user["content"]
    assert "Your memory:\nthe check is make test" in user["content"]
    assert (
        "Message #" in user["content"]
        and "from bob [question]:\nAnything to review?" in user["content"]
    )
    assert "tools" not in chats[0]  # one call, no tools


def test_an_agent_with_its_own_model_answers_with_it(
    spawn: Any, wait_for: Any, team_env: dict[str, str], db_url: str, fake_openai: Any
) -> None:
    """A defined agent's own model (`agent create --model`) answers its messages, not the
    role's model, and `agent edit --model` takes effect at the next answer."""
    server = fake_openai("Idle; ready for work.")
    env = {
        **team_env,
        "AGENTOS_DEMO": "0",
        "AGENTOS_MODEL": "openai/role-model",
        "AGENTOS_LLM_BASE_URL": server.url,
        "AGENTOS_LLM_API_KEY": "sk-local-test",
        "AGENTOS_USER": "bob",
    }
    r = _cli(env, "agent", "create", "r-own", "--role", "reviewer", "--model", "openai/own-model")
    assert r.returncode == 0, r.stderr
    spawn("reviewer", "r-host", **{k: env[k] for k in env if k.startswith("AGENTOS_")})
    _alive(wait_for, "r-host", "r-own")  # the running reviewer process adopted r-own
    r = _cli(env, "message", "send", "--to", "r-own", "Busy?", "--wait", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    assert "r-own → bob [answer, re #" in r.stdout
    r = _cli(env, "message", "send", "--to", "r-host", "Busy?", "--wait", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    r = _cli(env, "agent", "edit", "r-own", "--model", "openai/newer-model")
    assert r.returncode == 0, r.stderr
    r = _cli(env, "message", "send", "--to", "r-own", "Still?", "--wait", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    chats = [s for s in server.seen if s["path"].endswith("/chat/completions")]
    asked = [(c["messages"][0]["content"].split(",")[0], c["model"]) for c in chats]
    assert asked == [
        ("You are r-own", "own-model"),
        ("You are r-host", "role-model"),
        ("You are r-own", "newer-model"),
    ]


# ------------------------------------------------------------- in-process ----


async def test_the_answerer_works_through_a_burst_and_keeps_its_prompt_small(
    db_url: str, tmp_path: Path
) -> None:
    from agentos.agents import conversation
    from agentos.agents.config import AgentSettings, load_role
    from agentos.agents.llm import LLMClient
    from agentos.kernel import messages, tasks
    from agentos.kernel.db import Kernel

    s = AgentSettings(database_url=db_url, home=tmp_path / "home", demo=True)  # type: ignore[arg-type]
    kernel = await Kernel(s).open(min_size=1, max_size=4)
    try:
        async with kernel.connection() as conn:
            await conn.execute(
                "INSERT INTO agentos.agents (name, role, memory) VALUES ('w-burst', 'worker', %s)",
                ("remember this " * 500,),
            )
            t = await tasks.create_task(conn, title="Busy work")
            await conn.execute(
                "UPDATE agentos.tasks SET status = 'in_progress', lease_agent = 'w-burst', "
                "lease_token = gen_random_uuid(), lease_expires_at = now() + interval '1 hour' "
                "WHERE id = %s",
                (t.id,),
            )
            await conn.execute(
                "UPDATE agentos.agents SET current_task_id = %s WHERE name = 'w-burst'", (t.id,)
            )
            for i in range(40):
                await conn.execute(
                    "INSERT INTO agentos.steps (task_id, stage, seq, agent, kind, content) "
                    "VALUES (%s, 'work', %s, 'w-burst', 'llm', %s)",
                    (t.id, i, json.dumps({"content": f"step {i} " + "x" * 1000})),
                )
            asked = [
                await messages.send_message(
                    conn,
                    body=f"question {i}",
                    to_agent="w-burst",
                    from_agent="alice",
                    kind="question",
                    as_person=True,
                )
                for i in range(conversation.MAX_PER_WAKE + 3)
            ]
        answerer = conversation.Answerer(kernel, load_role("worker", s), LLMClient(kernel, s), s)
        # one wake-up answers at most MAX_PER_WAKE, oldest first; the next one the rest
        assert await answerer.answer_pending("w-burst") == conversation.MAX_PER_WAKE
        assert await answerer.answer_pending("w-burst") == 3
        assert await answerer.answer_pending("w-burst") == 0
        async with kernel.connection() as conn:
            answers = await (
                await conn.execute(
                    "SELECT reply_to, body FROM agentos.messages WHERE kind = 'answer' ORDER BY id"
                )
            ).fetchall()
            ctx = await messages.answer_context(conn, "w-burst", asked[-1])
        assert [a["reply_to"] for a in answers] == [m.id for m in asked]
        assert "My current task: #1 Busy work (in_progress)." in answers[0]["body"]
        assert "My last step: llm: step 39 xxx" in answers[0]["body"]
        prompt = conversation.answer_prompt(ctx, asked[-1])
        user = prompt[1]["content"]
        assert len(user) < 4500  # 40 long steps and a 7,000-character memory, capped
        assert user.count("\n- llm: step ") == conversation.CONTEXT_STEPS
        assert "step 34 " in user and "step 33 " not in user  # the last six, oldest first
    finally:
        await kernel.close()
