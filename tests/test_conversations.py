"""Conversations in the kernel and the CLI, against a real database: people as
addressees, threads, who a message wakes, per-reader receipts, channels, activities that
keep the whole message reachable. (Agents answering: tests/agents/test_conversations.py.)
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from agentos.kernel import channels, errors, messages, tasks
from agentos.kernel.db import Kernel


async def _agents(kernel: Kernel, *names: str) -> None:
    async with kernel.connection() as conn:
        for n in names:
            await conn.execute(
                "INSERT INTO agentos.agents (name, role, status) VALUES (%s, 'worker', 'idle')",
                (n,),
            )


async def _jobs(kernel: Kernel) -> list[str]:
    async with kernel.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT entrypoint FROM agentos.pgqueuer WHERE dedupe_key LIKE 'message:%%' "
                "ORDER BY entrypoint"
            )
        ).fetchall()
    return [r["entrypoint"] for r in rows]


async def _hold(kernel: Kernel, task_id: int, agent: str) -> None:
    """Lease a task to an agent, as a claim does."""
    async with kernel.connection() as conn:
        await conn.execute(
            "UPDATE agentos.tasks SET status = 'in_progress', lease_agent = %s, "
            "lease_token = gen_random_uuid(), lease_expires_at = now() + interval '1 hour' "
            "WHERE id = %s",
            (agent, task_id),
        )


async def test_a_persons_question_is_answered_back_to_them_in_the_same_thread(
    kernel: Kernel,
) -> None:
    await _agents(kernel, "w1")
    async with kernel.connection() as conn:
        q = await messages.send_message(
            conn, body="What are you on?", to_agent="w1", from_agent="alice",
            kind="question", as_person=True,
        )  # fmt: skip
        assert q.woken == ["w1"] and q.thread_id == q.id and q.reply_to is None
        assert await messages.addressee_kind(conn, "alice") == "person"
        assert await messages.pending_answers(conn, "w1") == [q]
        a = await messages.answer(conn, q, from_agent="w1", body="On nothing yet.")
        assert a is not None
        assert (a.to_agent, a.reply_to, a.thread_id, a.kind, a.woken) == (
            "alice", q.id, q.id, "answer", [],
        )  # fmt: skip
        # answered once: the question is handled (read by w1), a second answer is refused
        assert await messages.pending_answers(conn, "w1") == []
        assert await messages.answer(conn, q, from_agent="w1", body="again") is None
        assert (await messages.get_message(conn, q.id)).read_at is not None

        mine = await messages.conversation(conn, reader="alice")
        assert [(m.id, m.read) for m in mine] == [(q.id, True), (a.id, False)]
        assert await messages.unread_count(conn, "alice") == 1
        assert [
            m.id for m in await messages.conversation(conn, reader="alice", unread_only=True)
        ] == [a.id]
        assert await messages.mark_read(conn, [a.id], reader="alice") == 1
        assert await messages.mark_read(conn, [a.id], reader="alice") == 0
        assert await messages.unread_count(conn, "alice") == 0
        between = await messages.conversation(conn, reader="alice", with_name="w1")
        assert [m.id for m in between] == [q.id, a.id]
        # a person's reply to the answer wakes the agent again, in the same thread
        r = await messages.send_message(
            conn, body="Thanks", reply_to=a.id, to_agent="w1", from_agent="alice",
            kind="question", as_person=True,
        )  # fmt: skip
        assert r.thread_id == q.id and r.woken == ["w1"]
        assert [m.id for m in await messages.thread(conn, q.id, reader="alice")] == [
            q.id, a.id, r.id,
        ]  # fmt: skip
    assert await _jobs(kernel) == ["agent:w1"]  # one wake-up queued however many messages


async def test_broadcast_receipts_are_per_reader(kernel: Kernel) -> None:
    await _agents(kernel, "w1", "w2", "w3")
    async with kernel.connection() as conn:
        b = await messages.send_message(conn, body="main is red", from_agent="w1")
        assert b.kind == "broadcast" and b.woken == []
        for reader in ("w2", "w3"):
            unread = await messages.list_messages(conn, agent=reader, unread_only=True)
            assert [m.id for m in unread] == [b.id]
        assert await messages.mark_read(conn, [b.id], reader="w2") == 1
        assert await messages.list_messages(conn, agent="w2", unread_only=True) == []
        # w2 reading it does not read it for w3 (nor for a person)
        assert [m.id for m in await messages.list_messages(conn, agent="w3", unread_only=True)] == [
            b.id
        ]
        assert await messages.unread_count(conn, "alice") == 1
        assert await messages.list_messages(conn, agent="w1", unread_only=True) == []  # its own
        rows = await (
            await conn.execute(
                "SELECT reader FROM agentos.message_reads WHERE message_id = %s", (b.id,)
            )
        ).fetchall()
        assert [r["reader"] for r in rows] == ["w2"]


async def test_a_task_message_wakes_its_holder_or_waits_for_the_next_one(kernel: Kernel) -> None:
    await _agents(kernel, "w1", "w2")
    async with kernel.connection() as conn:
        held = await tasks.create_task(conn, title="Held task")
        idle = await tasks.create_task(conn, title="Nobody holds me")
    await _hold(kernel, held.id, "w1")
    async with kernel.connection() as conn:
        q1 = await messages.send_message(
            conn, body="How is it going?", task_id=held.id, from_agent="alice",
            kind="question", as_person=True,
        )  # fmt: skip
        assert q1.woken == ["w1"]
        # the holder's own notes on its thread wake nobody
        note = await messages.send_message(
            conn, body="tests pass", task_id=held.id, from_agent="w1"
        )
        assert note.woken == []
        # an agent's comment is not a question to the holder; a person's comment is
        c = await messages.send_message(conn, body="fyi", task_id=held.id, from_agent="w2")
        assert c.woken == []
        pc = await messages.send_message(
            conn, body="keep the API", task_id=held.id, from_agent="alice", as_person=True
        )
        assert pc.woken == ["w1"]
        # nobody holds it: the question waits, wakes nobody
        q2 = await messages.send_message(
            conn, body="Anyone?", task_id=idle.id, from_agent="alice",
            kind="question", as_person=True,
        )  # fmt: skip
        assert q2.woken == []
        assert [m.id for m in await messages.pending_answers(conn, "w2")] == []
    assert await _jobs(kernel) == ["agent:w1"]
    await _hold(kernel, idle.id, "w2")
    async with kernel.connection() as conn:
        # whoever takes the task next owes it an answer
        assert [m.id for m in await messages.pending_answers(conn, "w2")] == [q2.id]
        a = await messages.answer(conn, q2, from_agent="w2", body="Me, now.")
        assert a is not None and a.task_id == idle.id and a.to_agent == "alice"
        assert await messages.pending_answers(conn, "w2") == []
        ctx = await messages.answer_context(conn, "w1", q1)
        assert ctx.task is not None and ctx.task["title"] == "Held task"
        assert ctx.task["status"] == "in_progress" and ctx.task["holder"] == "w1"


async def test_a_channel_mention_wakes_only_the_members_it_names(kernel: Kernel) -> None:
    await _agents(kernel, "w1", "w2", "w3")
    async with kernel.connection() as conn:
        ch = await channels.create_channel(
            conn, "ops", members=["w1", "w2"], created_by="alice", description="on call"
        )
        assert ch.members == ["alice", "w1", "w2"]
        p = await channels.post(
            conn, "ops", "@W1, @w3 and bob@example.com: status?", from_agent="alice"
        )
        # w3 is mentioned but not a member; w2 a member not mentioned; the address is no mention
        assert p.mentions == ["w1", "w3"] and p.woken == ["w1"]
        quiet = await channels.post(conn, "ops", "no names here", from_agent="alice")
        assert quiet.woken == []
        for reader, n in (("w1", 2), ("w2", 2), ("w3", 1)):  # w3 sees the mention only
            assert len(await messages.list_messages(conn, agent=reader, unread_only=True)) == n
        a = await messages.answer(conn, p, from_agent="w1", body="green")
        assert a is not None and a.channel_id == ch.id and a.to_agent == "alice"
        listed = await channels.list_channels(conn, reader="alice")
        assert [(c.name, c.messages, c.unread) for c in listed] == [("ops", 3, 1)]
        ops = await messages.conversation(conn, reader="w2", channel="ops")
        assert [m.id for m in ops] == [p.id, quiet.id, a.id]
        # a task's thread is its channel task-N: open, mentions wake any agent there
        t = await tasks.create_task(conn, title="A task")
        m = await channels.post(conn, f"task-{t.id}", "@w3 can you look?", from_agent="alice")
        assert m.task_id == t.id and m.channel_id is None and m.woken == ["w3"]
        with pytest.raises(errors.BadInput, match="no channel 'nope'"):
            await channels.post(conn, "nope", "hi", from_agent="alice")
        with pytest.raises(errors.BadInput, match="exists"):
            await channels.create_channel(conn, "ops", members=["w1"], created_by="alice")
        with pytest.raises(errors.BadInput, match="task 3's thread"):
            await channels.create_channel(conn, "task-3", members=["w1"], created_by="alice")
        with pytest.raises(errors.BadInput, match="no agent or person 'ghost'"):
            await channels.create_channel(conn, "x", members=["ghost"], created_by="alice")
    assert await _jobs(kernel) == ["agent:w1", "agent:w3"]


async def test_names_are_one_namespace_and_psql_inserts_are_held_to_the_same_rules(
    kernel: Kernel, db_url: str
) -> None:
    await _agents(kernel, "w1")
    async with kernel.connection() as conn:
        with pytest.raises(errors.BadInput, match="agent's name"):
            await messages.send_message(
                conn, body="hi", to_agent="w1", from_agent="w1", as_person=True
            )
        await messages.ensure_person(conn, "alice")
    with psycopg.connect(db_url) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation, match="belongs to a person"):
            conn.execute("INSERT INTO agentos.agents (name, role) VALUES ('alice', 'worker')")
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO agentos.messages (to_agent, body) VALUES ('w1', 'from psql') "
            "RETURNING from_agent, woken, thread_id = id"
        ).fetchone()
        user = conn.execute("SELECT current_user").fetchone()
    assert row == (user[0] if user else None, ["w1"], True)
    assert await _jobs(kernel) == ["agent:w1"]


async def test_no_wake_and_quiet_kinds_wake_nobody(kernel: Kernel) -> None:
    await _agents(kernel, "w1")
    async with kernel.connection() as conn:
        for kind in ("answer", "review", "status"):
            m = await messages.send_message(
                conn, body=kind, to_agent="w1", from_agent="x", kind=kind
            )
            assert m.woken == []
        m = await messages.send_message(conn, body="shh", to_agent="w1", from_agent="x", wake=False)
        assert m.woken == []
        loud = await messages.send_message(conn, body="hey", to_agent="w1", from_agent="x")
        assert loud.woken == ["w1"]  # the quiet one did not leave the wake-up off
    assert await _jobs(kernel) == ["agent:w1"]


async def test_the_activity_of_a_long_message_points_to_the_whole_text(kernel: Kernel) -> None:
    await _agents(kernel, "w1")
    body = "line one\n" + "word " * 100 + "THE END"
    async with kernel.connection() as conn:
        m = await messages.send_message(
            conn, body=body, to_agent="w1", from_agent="alice", as_person=True
        )
        act = await (
            await conn.execute(
                "SELECT message, data FROM agentos.activities WHERE kind = 'message.sent'"
            )
        ).fetchone()
        assert act is not None
        assert act["message"].startswith("line one word word") and act["message"].endswith("…")
        assert len(act["message"]) == 201 and "\n" not in act["message"]
        assert act["data"]["message"] == m.id and act["data"]["cut"] is True
        assert act["data"]["length"] == len(body) and act["data"]["woken"] == ["w1"]
        assert (await messages.get_message(conn, act["data"]["message"])).body == body


# ---------------------------------------------------------------------- CLI ----


def _json(r: Any) -> Any:
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_cli_send_list_show_and_log_as_a_person(
    run_cli: Any, cli_env: dict[str, str], db_url: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO agentos.agents (name, role) VALUES ('w1', 'worker')")
    env = {**cli_env, "AGENTOS_USER": "carol"}
    from tests.conftest import agentos

    long = "please " * 60 + "done"
    sent = _json(agentos(env, "message", "send", "--to", "w1", long, "--json"))
    assert sent["from_agent"] == "carol" and sent["woken"] == ["w1"] and sent["kind"] == "question"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO agentos.messages (from_agent, to_agent, kind, body, reply_to) "
            "VALUES ('w1', 'carol', 'answer', 'Sure thing.', %s)",
            (sent["id"],),
        )
    unread = _json(agentos(env, "message", "list", "--unread", "--json", "--peek"))
    assert [(m["from_agent"], m["body"], m["read"]) for m in unread] == [
        ("w1", "Sure thing.", False)
    ]
    text = agentos(env, "message", "list", "--with", "w1")
    assert text.returncode == 0, text.stderr
    assert (
        "carol → w1 [question]" in text.stdout
        and f"[answer, re #{sent['id']}]  (new)" in text.stdout
    )
    assert "    Sure thing." in text.stdout
    # listing read it: nothing unread now
    again = agentos(env, "message", "list", "--unread")
    assert again.returncode == 0 and again.stdout.strip() == "no unread messages"
    shown = agentos(env, "message", "show", str(sent["id"]))
    assert shown.returncode == 0 and long in shown.stdout.replace("\n    ", " ")
    assert shown.stdout.splitlines()[0].startswith(f"> #{sent['id']}")
    log = agentos(env, "log")
    assert f"(message #{sent['id']} in full: agentos message show {sent['id']})" in log.stdout
    full = agentos(env, "log", "--full")
    assert full.returncode == 0 and "done" in full.stdout
    # another person does not see carol's mail as theirs
    dave = agentos({**cli_env, "AGENTOS_USER": "dave"}, "message", "list", "--json")
    assert _json(dave) == []


def test_cli_channels_and_bad_input(run_cli: Any, cli_env: dict[str, str], db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO agentos.agents (name, role) VALUES ('w1', 'worker'), ('w2', 'worker')"
        )
    from tests.conftest import agentos

    env = {**cli_env, "AGENTOS_USER": "carol"}
    made = agentos(env, "channel", "create", "ops", "--members", "w1, w2", "-d", "on call")
    assert made.returncode == 0 and made.stdout.strip() == "channel ops: carol, w1, w2"
    posted = _json(agentos(env, "channel", "post", "ops", "@w2 is main green?", "--json"))
    assert posted["woken"] == ["w2"] and posted["channel"] == "ops"
    listed = agentos(env, "channel", "list")
    assert (
        listed.returncode == 0
        and listed.stdout.startswith("ops ")
        and "1 messages" in listed.stdout
    )
    assert (
        _json(agentos(env, "message", "list", "--channel", "ops", "--json"))[0]["id"]
        == posted["id"]
    )
    for args, code, text in (
        (("message", "send", "--to", "ghost", "hi"), 2, "error: no agent or person 'ghost'"),
        (("message", "send", "hi"), 2, "error: give --to NAME, --task ID or --reply-to ID"),
        (("message", "send", "--task", "99", "hi"), 2, "error: no task 99"),
        (("message", "send", "--to", "w1", "hi", "--wait", "--timeout", "0"), 2, "--timeout"),
        (("message", "show", "424242"), 3, "error: no message 424242"),
        (("message", "list", "--with", "ghost"), 2, "error: no agent or person 'ghost'"),
        (("channel", "create", "ops", "--members", "w1"), 2, "error: channel 'ops' exists"),
        (("channel", "create", "Bad Name", "--members", "w1"), 2, "is not a name"),
        (("channel", "create", "x", "--members", ""), 2, "at least one member"),
        (("channel", "post", "nope", "hi"), 2, "error: no channel 'nope'"),
    ):
        r = agentos(env, *args)
        assert r.returncode == code and text in r.stderr, (args, r.returncode, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    bad_user = agentos({**cli_env, "AGENTOS_USER": "Not A Name"}, "message", "list")
    assert bad_user.returncode == 2 and "AGENTOS_USER" in bad_user.stderr
    w1_as_person = agentos({**cli_env, "AGENTOS_USER": "w1"}, "message", "send", "--to", "w2", "x")
    assert w1_as_person.returncode == 2 and "agent's name" in w1_as_person.stderr


def test_cli_wait_times_out_when_nobody_answers(cli_env: dict[str, str], db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO agentos.agents (name, role) VALUES ('w1', 'worker')")
    from tests.conftest import agentos

    r = agentos({**cli_env, "AGENTOS_USER": "carol"}, "message", "send", "--to", "w1", "hello?",
                "--wait", "--timeout", "1.5")  # fmt: skip
    assert r.returncode == 1
    assert r.stdout.startswith("sent message #") and "(woke w1)" in r.stdout
    assert "error: no answer within 1.5 s; message #" in r.stderr


def test_cli_list_follow_prints_new_messages_as_they_come(
    cli_env: dict[str, str], db_url: str
) -> None:
    import subprocess
    import sys
    import time

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO agentos.agents (name, role) VALUES ('w1', 'worker')")
        conn.execute(
            "INSERT INTO agentos.messages (from_agent, to_agent, kind, body) "
            "VALUES ('w1', 'carol', 'answer', 'before')"
        )
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentos.cli.main", "message", "list", "--follow", "--json"],
        env={**cli_env, "AGENTOS_USER": "carol"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["body"] == "before" and first["read"] is False
        time.sleep(0.5)  # following now (the listener started before the first read)
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO agentos.messages (from_agent, to_agent, kind, body) "
                "VALUES ('w1', 'carol', 'answer', 'after'), ('w1', 'dave', 'answer', 'not hers')"
            )
        second = json.loads(proc.stdout.readline())
        assert second["body"] == "after" and second["to_agent"] == "carol"
    finally:
        proc.terminate()
        proc.wait(10)
    with psycopg.connect(db_url) as conn:
        read = conn.execute(
            "SELECT m.body FROM agentos.message_reads r JOIN agentos.messages m "
            "ON m.id = r.message_id WHERE r.reader = 'carol' ORDER BY m.id"
        ).fetchall()
    assert read == [("before",), ("after",)]
