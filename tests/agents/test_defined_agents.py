"""Agents as data, running: a created agent is hosted by `agentos start` without a --name
(before or after the team starts, of a shipped role or one only it has), one live
session at a time; its own model and instructions sit on top of its role's; identity and
memory survive a restart. Real processes, real git, the scripted model or a local
OpenAI-compatible server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg


def _cli(env: dict[str, str], *args: str, input: str | None = None) -> Any:
    r = subprocess.run(
        [sys.executable, "-m", "agentos.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        input=input,
    )
    assert r.returncode == 0, (args, r.stderr)
    return r


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "agentos.cli.main", "start", "--workers=1", "--reviewers=1",
             "--orchestrators=0"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _stop(sup: subprocess.Popen[bytes]) -> None:
    if sup.poll() is None:
        sup.send_signal(signal.SIGINT)
        try:
            sup.wait(60)
        except subprocess.TimeoutExpired:
            sup.kill()
            sup.wait(10)


def _hosts(db_url: str, name: str) -> list[tuple[Any, ...]]:
    """The running sessions that list the agent."""
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT id, pid FROM agentos.agent_sessions WHERE status = 'running' "
            "AND %s = ANY(agents)",
            (name,),
        ).fetchall()


def test_created_agents_run_under_agentos_start_and_keep_identity_and_memory(
    wait_for: Any, team_env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    roles = tmp_path / "roles"
    roles.mkdir()
    # a role only a created agent has: the team runs it for her
    (roles / "tester.yaml").write_text(
        "name: tester\nmodel: openai/gpt-4o-mini\nprompts: {system: worker_system.j2, "
        "task: worker_task.j2}\ntools: [write_file, run_command, git_commit]\n"
        "actions: [submit_for_review, block]\n"
    )
    env = {**team_env, "AGENTOS_ROLES_DIR": str(roles), "USER": "alice"}
    _cli(env, "agent", "create", "ada", "--role", "worker", "-d", "Writes notes")
    _cli(env, "agent", "create", "tess", "--role", "tester")
    _cli(env, "agent", "memory", "edit", "ada", input="Notes go under notes/.\n")
    log = tmp_path / "start.log"
    sup = _start(env, log)
    try:
        first = json.loads(
            _cli(env, "task", "create", "Write ada's notes", "--assign", "ada", "--json").stdout
        )["id"]
        tested = json.loads(
            _cli(env, "task", "create", "Write tess's notes", "--assign", "tess", "--json").stdout
        )["id"]
        for tid in (first, tested):
            wait_for(
                "SELECT status::text FROM agentos.tasks WHERE id = %s",
                lambda rows: rows[0][0] == "done",
                timeout=180,
                params=(tid,),
            )
        with psycopg.connect(db_url) as conn:
            workers = conn.execute(
                "SELECT task_id, array_agg(DISTINCT agent) FROM agentos.steps "
                "WHERE stage = 'work' GROUP BY task_id ORDER BY task_id"
            ).fetchall()
            system = conn.execute(
                "SELECT content->>'text' FROM agentos.steps WHERE task_id = %s AND kind = 'system'",
                (first,),
            ).fetchone()
        assert workers == [(first, ["ada"]), (tested, ["tess"])]
        assert system is not None and "Notes go under notes/." in system[0]  # her memory
        team = _hosts(db_url, "ada")
        assert len(team) == 1 and team == _hosts(db_url, "worker-1")  # one process, a slot
        shown = _cli(env, "agent", "show", "ada").stdout
        assert "status: idle in pid" in shown and "ada (worker)" in shown

        # made while the team runs: hosted within seconds, and works
        _cli(env, "agent", "create", "bo", "--role", "worker")
        later = json.loads(
            _cli(env, "task", "create", "Write bo's notes", "--assign", "bo", "--json").stdout
        )["id"]
        wait_for(
            "SELECT status::text FROM agentos.tasks WHERE id = %s",
            lambda rows: rows[0][0] == "done",
            timeout=180,
            params=(later,),
        )
        # removed while idle: the team gives its slot back
        _cli(env, "agent", "rm", "bo")
        wait_for(
            "SELECT count(*) FROM agentos.agent_sessions WHERE status = 'running' "
            "AND 'bo' = ANY(agents)",
            lambda rows: rows[0][0] == 0,
            timeout=30,
        )
    finally:
        _stop(sup)
    assert sup.returncode == 0, log.read_text()[-3000:]
    shown = json.loads(_cli(env, "agent", "show", "ada", "--json").stdout)
    assert shown["status"] == "offline" and shown["memory"] == "Notes go under notes/.\n"

    # a restart: the same agent, the same memory, hosted again
    sup = _start(env, log)
    try:
        wait_for(
            "SELECT count(*) FROM agentos.agent_sessions WHERE status = 'running' "
            "AND 'ada' = ANY(agents)",
            lambda rows: rows[0][0] == 1,
            timeout=90,
        )
        again = json.loads(
            _cli(
                env, "task", "create", "Write ada's second notes", "--assign", "ada", "--json"
            ).stdout
        )["id"]
        wait_for(
            "SELECT status::text FROM agentos.tasks WHERE id = %s",
            lambda rows: rows[0][0] == "done",
            timeout=180,
            params=(again,),
        )
    finally:
        _stop(sup)
    with psycopg.connect(db_url) as conn:
        ids = conn.execute("SELECT count(*) FROM agentos.agents WHERE name = 'ada'").fetchone()
    assert ids == (1,)


def test_an_agents_own_model_and_instructions_sit_on_top_of_its_role(
    wait_for: Any, team_env: dict[str, str], db_url: str, fake_openai: Any
) -> None:
    server = fake_openai("pong")
    env = {k: v for k, v in team_env.items() if k != "AGENTOS_DEMO"}
    env.update(
        AGENTOS_LLM_BASE_URL=server.url,
        AGENTOS_LLM_API_KEY="sk-local",
        AGENTOS_MODEL="openai/everyone",
    )
    _cli(env, "agent", "create", "cara", "--role", "worker", "--model", "openai/cara-model",
         "--instructions", "Answer like a pirate.")  # fmt: skip
    # two processes of the role: one hosts cara, never both
    argv = [sys.executable, "-m", "agentos.cli.main", "agent", "run", "--role", "worker"]
    procs = [
        subprocess.Popen(
            [*argv, "--name", name], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for name in ("w0", "w1")
    ]
    try:
        wait_for(
            "SELECT count(*) FROM agentos.agent_sessions WHERE status = 'running' "
            "AND agents && ARRAY['w0', 'w1']",
            lambda rows: rows[0][0] == 2,
            timeout=90,
        )
        wait_for(
            "SELECT count(*) FROM agentos.agent_sessions WHERE status = 'running' "
            "AND 'cara' = ANY(agents)",
            lambda rows: rows[0][0] == 1,
            timeout=30,
        )
        mine = json.loads(
            _cli(env, "task", "create", "Cara's task", "--assign", "cara", "--json").stdout
        )["id"]
        theirs = json.loads(
            _cli(env, "task", "create", "w0's task", "--assign", "w0", "--json").stdout
        )["id"]
        for tid in (mine, theirs):  # the model only talks: the loop blocks, with the reason
            wait_for(
                "SELECT status::text FROM agentos.tasks WHERE id = %s",
                lambda rows: rows[0][0] == "blocked",
                timeout=120,
                params=(tid,),
            )
        assert len(_hosts(db_url, "cara")) == 1
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    with psycopg.connect(db_url) as conn:
        calls = dict(
            conn.execute(
                "SELECT task_id, array_agg(DISTINCT model) FROM agentos.llm_calls GROUP BY 1"
            ).fetchall()
        )
    assert calls[mine] == ["openai/cara-model"] and calls[theirs] == ["openai/everyone"]
    seen = {req["model"]: req["messages"][0]["content"] for req in server.seen}
    assert "Answer like a pirate." in seen["cara-model"]
    assert "Answer like a pirate." not in seen["everyone"]
