"""The secrets store (issue 10): encrypted at rest, scoped, read from stdin only, never
shown, and redacted from everything the kernel writes and every log line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from agentos.kernel import activities, errors, messages, redact, secrets, steps, tasks
from agentos.kernel.db import Kernel
from agentos.kernel.settings import Settings

from tests.conftest import agentos


def _pg_dump(url: str) -> str:
    from agentos.kernel.embedded import binary

    return subprocess.run(
        [str(binary("pg_dump")), "--dbname", url], check=True, capture_output=True, text=True
    ).stdout


CANARY = "canary-7f3a9c1e5b2d4f60"


def test_set_list_rm_through_the_cli_and_the_value_is_only_ciphertext(
    run_cli: Any, cli_env: dict[str, str], db_url: str
) -> None:
    r = run_cli("secret", "set", "GITHUB_TOKEN", "--scope", "role:worker", input=CANARY + "\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "secret GITHUB_TOKEN set (role:worker)"
    assert CANARY not in r.stdout + r.stderr
    r = run_cli("secret", "set", "GITHUB_TOKEN", "--scope", "role:worker", "--scope", "global",
                input=CANARY + "-2")  # fmt: skip
    assert r.returncode == 0 and "replaced (role:worker)" in r.stdout and "set (global)" in r.stdout
    listed = run_cli("secret", "list", "--json")
    rows = json.loads(listed.stdout)
    assert [(x["name"], x["scope"]) for x in rows] == [
        ("GITHUB_TOKEN", "global"),
        ("GITHUB_TOKEN", "role:worker"),
    ]
    assert CANARY not in listed.stdout and "value" not in rows[0]
    text = run_cli("secret", "list")
    assert "GITHUB_TOKEN" in text.stdout and CANARY not in text.stdout
    # the key file was made with mode 0600 under AGENTOS_HOME
    key_file = Path(cli_env["AGENTOS_HOME"]) / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    dump = _pg_dump(db_url)
    assert "GITHUB_TOKEN" in dump and CANARY not in dump
    # activities name the secret and scope, never the value
    with psycopg.connect(db_url) as conn:
        acts = conn.execute(
            "SELECT message FROM agentos.activities WHERE kind LIKE 'secret.%' ORDER BY id"
        ).fetchall()
    assert [a[0] for a in acts] == [
        "secret GITHUB_TOKEN (role:worker) set",
        "secret GITHUB_TOKEN (role:worker) replaced",
        "secret GITHUB_TOKEN (global) set",
    ]
    r = run_cli("secret", "rm", "GITHUB_TOKEN", "--scope", "global")
    assert r.returncode == 0 and r.stdout.strip() == "secret GITHUB_TOKEN removed (global)"
    r = run_cli("secret", "rm", "GITHUB_TOKEN")
    assert r.returncode == 0 and "(role:worker)" in r.stdout
    r = run_cli("secret", "rm", "GITHUB_TOKEN")
    assert r.returncode == 3 and r.stderr.startswith("error: no secret GITHUB_TOKEN")


@pytest.mark.parametrize(
    ("args", "stdin", "expect"),
    [
        (["secret", "set", "X_TOKEN"], "", "standard input, which was empty"),
        (["secret", "set", "X_TOKEN"], "\n", "standard input, which was empty"),
        (["secret", "set", "X_TOKEN"], "abc", "at least 6 characters"),
        (["secret", "set", "X_TOKEN", "the-value-in-argv"], "", "unexpected extra argument"),
        (["secret", "set", "bad-name"], CANARY, "bad secret name"),
        (["secret", "set", "X_TOKEN", "--scope", "team:x"], CANARY, "bad scope"),
        (["secret", "set", "X_TOKEN", "--scope", "task:0"], CANARY, "a task id"),
        (["secret", "set", "X_TOKEN", "--scope", "task:999"], CANARY, "no task 999"),
        (["secret", "set", "X_TOKEN", "--scope", "role:nosuchrole"], CANARY, "unknown role"),
        (["secret", "set", "X_TOKEN"], "a\x00bcdefgh", "NUL byte"),
        (["secret", "rm", "X_TOKEN", "--scope", "role:"], "", "bad scope"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    run_cli: Any, db_url: str, args: list[str], stdin: str, expect: str
) -> None:
    r = run_cli(*args, input=stdin)
    assert r.returncode == (3 if expect.startswith("no task") else 2), (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and expect in r.stderr
    assert CANARY not in r.stderr
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM agentos.secrets").fetchone() == (0,)


async def test_resolution_takes_the_most_specific_scope_and_registers_the_value(
    kernel: Kernel, settings: Settings
) -> None:
    async with kernel.connection() as conn:
        t = await tasks.create_task(conn, title="scoped")
        for scope, value in [
            (secrets.GLOBAL, "value-global-1"),
            (secrets.Scope("role", "worker"), "value-role-22"),
            (secrets.Scope("agent", "w-1"), "value-agent-333"),
            (secrets.Scope("task", str(t.id)), "value-task-4444"),
        ]:
            await secrets.set_secret(conn, settings, "API_TOKEN", value, scopes=[scope])
        got = [
            (await secrets.resolve(conn, settings, ["API_TOKEN"], **kw))["API_TOKEN"]
            for kw in (
                {"role": "reviewer"},
                {"role": "worker"},
                {"role": "worker", "agent": "w-1"},
                {"role": "worker", "agent": "w-1", "task_id": t.id},
                {"role": "worker", "agent": "w-2", "task_id": t.id + 1},
            )
        ]
        assert got == [
            "value-global-1", "value-role-22", "value-agent-333", "value-task-4444",
            "value-role-22",
        ]  # fmt: skip
        with pytest.raises(secrets.SecretUnavailable, match="unknown secret OTHER_TOKEN for role"):
            await secrets.resolve(conn, settings, ["OTHER_TOKEN"], role="worker")
        assert await secrets.unresolvable(conn, ["API_TOKEN", "OTHER_TOKEN"], role="x") == [
            "OTHER_TOKEN"
        ]
    assert redact.redact_text("say value-agent-333!") == "say [secret:API_TOKEN]!"


async def test_another_key_or_a_moved_ciphertext_does_not_open(
    kernel: Kernel, settings: Settings, tmp_path: Path
) -> None:
    async with kernel.connection() as conn:
        await secrets.set_secret(conn, settings, "A_TOKEN", "value-of-a-token", scopes=[
            secrets.Scope("role", "worker")])  # fmt: skip
        await secrets.set_secret(conn, settings, "B_TOKEN", "value-of-b-token")
        other = Settings(
            database_url=settings.database_url, home=settings.home,
            secret_key=secrets.generate_key(),  # type: ignore[arg-type]
        )  # fmt: skip
        with pytest.raises(secrets.SecretUnavailable, match="was set with another key"):
            await secrets.resolve(conn, other, ["A_TOKEN"], role="worker")
        # B's ciphertext moved into A's row: the associated data (name, scope) refuses it
        await conn.execute(
            "UPDATE agentos.secrets SET ciphertext = (SELECT ciphertext FROM agentos.secrets "
            "WHERE name = 'B_TOKEN') WHERE name = 'A_TOKEN'"
        )
        with pytest.raises(secrets.SecretUnavailable, match="does not decrypt"):
            await secrets.resolve(conn, settings, ["A_TOKEN"], role="worker")
    bad = Settings(home=tmp_path / "h2", secret_key="not-a-key")  # type: ignore[arg-type]
    with pytest.raises(secrets.SecretUnavailable, match="AGENTOS_SECRET_KEY is not a secret key"):
        secrets.load_key(bad)
    nokey = Settings(home=tmp_path / "h3")
    with pytest.raises(secrets.SecretUnavailable, match="no secret key here"):
        secrets.load_key(nokey)
    secrets.load_key(nokey, create=True)
    nokey.secret_key_file.chmod(0o644)
    with pytest.raises(secrets.SecretUnavailable, match="readable by others"):
        secrets.load_key(nokey)


def test_the_agent_role_reads_secrets_but_cannot_write_them(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SET ROLE agentos_agent")
        conn.execute("SELECT name, ciphertext FROM agentos.secrets").fetchall()
        for statement in (
            "INSERT INTO agentos.secrets (name, ciphertext, key_id) "
            "VALUES ('X', '\\x00', '0000000000000000')",
            "UPDATE agentos.secrets SET name = 'Y'",
            "DELETE FROM agentos.secrets",
            "TRUNCATE agentos.secrets",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        conn.execute("RESET ROLE")
        conn.execute("SET ROLE agentos_precondition")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT name FROM agentos.secrets")


async def test_every_kernel_write_path_redacts_a_registered_value(
    kernel: Kernel, settings: Settings, db_url: str
) -> None:
    value = "plant-" + CANARY
    async with kernel.connection() as conn:
        await secrets.set_secret(conn, settings, "PLANTED_KEY", value)
        t = await tasks.create_task(conn, title=f"title {value}", description=f"d {value}",
                                    acceptance=value, metadata={"note": value})  # fmt: skip
        await activities.record(conn, "test.kind", task_id=t.id, message=value,
                                data={"nested": [value]})  # fmt: skip
        await messages.send_message(conn, body=f"m {value}", task_id=t.id)
        await steps.append(conn, task_id=t.id, stage="work", seq=0, agent="a", attempt=0,
                           kind="tool_result", content={"output": f"out {value}"})  # fmt: skip
        await tasks.transition(conn, t.id, "failed", actor="t", reason=value, error=value)
        rows = await steps.load(conn, t.id, "work")
    assert rows[0].content == {"output": "out [secret:PLANTED_KEY]"}
    dump = _pg_dump(db_url)
    assert value not in dump and CANARY not in dump
    assert dump.count("[secret:PLANTED_KEY]") >= 8


async def test_a_fresh_process_primes_its_redactor_from_the_store(
    kernel: Kernel, settings: Settings, tmp_path: Path
) -> None:
    async with kernel.connection() as conn:
        await secrets.set_secret(conn, settings, "PRIMED_TOKEN", "primed-value-0042")
    code = (
        "import asyncio, sys\n"
        "from agentos.kernel import redact, secrets\n"
        "from agentos.kernel.db import Kernel\n"
        "from agentos.kernel.settings import Settings\n"
        "async def main():\n"
        "    k = await Kernel(Settings()).open(min_size=1, max_size=1)\n"
        "    async with k.connection() as conn:\n"
        "        n = await secrets.prime_redactor(conn, k.settings)\n"
        "    await k.close()\n"
        "    print(n, redact.redact_text('x primed-value-0042 y'))\n"
        "asyncio.run(main())\n"
    )
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_")}
    env.update(AGENTOS_DATABASE_URL=str(settings.database_url.get_secret_value()),  # type: ignore[union-attr]
               AGENTOS_HOME=str(settings.home))  # fmt: skip
    out = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1 x [secret:PRIMED_TOKEN] y"


def test_the_log_filter_redacts_messages_arguments_and_tracebacks() -> None:
    redact.register("LOG_TOKEN", "log-token-value-99")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(redact.RedactingFilter())
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("agentos.test.redact")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("token %s in args", "log-token-value-99")
        log.warning("token log-token-value-99 in the message")
        log.warning("in a list %s", ["log-token-value-99"])
        try:
            raise RuntimeError("boom log-token-value-99")
        except RuntimeError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "log-token-value-99" not in text
    # three messages, and the traceback: its source line and its exception line
    assert text.count("[secret:LOG_TOKEN]") == 5


def test_secret_errors_are_bad_input() -> None:
    assert issubclass(secrets.SecretUnavailable, errors.BadInput)
    with pytest.raises(errors.BadInput, match="bad scope"):
        secrets.parse_scope("role:Bad Name")
    assert str(secrets.parse_scope("task:007")) == "task:7"
    assert str(secrets.parse_scope("global")) == "global"


# ------------------------------------------------------------- key rotation --


def _key_ids(db_url: str) -> list[str]:
    with psycopg.connect(db_url) as conn:
        return [r[0] for r in conn.execute("SELECT key_id FROM agentos.secrets ORDER BY id")]


def _resolved(cli_env: dict[str, str], db_url: str, **env: str) -> dict[str, str]:
    """What a process with these key settings resolves for role worker (a real process)."""
    code = (
        "import asyncio, json\n"
        "from agentos.kernel import secrets\n"
        "from agentos.kernel.db import Kernel\n"
        "from agentos.kernel.settings import Settings\n"
        "async def main():\n"
        "    k = await Kernel(Settings()).open(min_size=1, max_size=1)\n"
        "    async with k.connection() as c:\n"
        "        v = await secrets.resolve(c, k.settings, ['A_TOKEN', 'B_TOKEN'], role='worker', required=False)\n"
        "    await k.close()\n"
        "    print(json.dumps(v))\n"
        "asyncio.run(main())\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        env={**cli_env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


def test_rekey_moves_every_secret_to_a_new_key_file_and_the_old_key_no_longer_opens(
    run_cli: Any, cli_env: dict[str, str], db_url: str
) -> None:
    for name, value in (("A_TOKEN", CANARY + "-a"), ("B_TOKEN", CANARY + "-b")):
        r = run_cli("secret", "set", name, "--scope", "role:worker", input=value)
        assert r.returncode == 0, r.stderr
    key_file = Path(cli_env["AGENTOS_HOME"]) / "secret.key"
    old = key_file.read_text().strip()
    old_id = secrets._parse_key(old, "old").key_id
    assert _key_ids(db_url) == [old_id, old_id]
    r = run_cli("secret", "rekey", "--new-key", "--json")
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout)
    assert done["rewritten"] == 2 and done["unchanged"] == 0 and done["key_id"] != old_id
    assert old not in r.stdout + r.stderr and CANARY not in r.stdout + r.stderr
    new = key_file.read_text().strip()
    assert new != old and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not (key_file.parent / "secret.key.new").exists()
    assert _key_ids(db_url) == [done["key_id"]] * 2
    # the values are the same, opened with the new key file ...
    assert _resolved(cli_env, db_url) == {"A_TOKEN": CANARY + "-a", "B_TOKEN": CANARY + "-b"}
    # ... and the old key opens nothing any more
    key_file.write_text(old + "\n")
    r = run_cli("secret", "rekey")
    assert r.returncode == 2
    assert r.stderr.startswith("error: secret A_TOKEN (role:worker) was set with another key")
    assert len(r.stderr.strip().splitlines()) == 1
    assert _key_ids(db_url) == [done["key_id"]] * 2  # nothing changed
    with psycopg.connect(db_url) as conn:
        acts = conn.execute(
            "SELECT message, data FROM agentos.activities WHERE kind = 'secret.rekeyed'"
        ).fetchall()
    assert [a[0] for a in acts] == [f"2 secret(s) re-encrypted under key {done['key_id']}"]
    assert old not in json.dumps([a[1] for a in acts]) and new not in json.dumps(acts[0][1])


def test_a_rotation_rolls_out_with_the_previous_key_beside_the_new_one(
    run_cli: Any, cli_env: dict[str, str], db_url: str
) -> None:
    """Processes get the new key and the previous one; they read both while `rekey` moves
    the rows; after it, the previous key can go."""
    old, new = secrets.generate_key(), secrets.generate_key()
    with_old = {**cli_env, "AGENTOS_SECRET_KEY": old}
    r = agentos(with_old, "secret", "set", "A_TOKEN", "--scope", "role:worker", input=CANARY + "-a")
    assert r.returncode == 0, r.stderr
    rolling = {**cli_env, "AGENTOS_SECRET_KEY": new, "AGENTOS_SECRET_KEY_PREVIOUS": old}
    # a process of the new release reads the old row, and writes under the new key
    assert _resolved(cli_env, db_url, **rolling) == {"A_TOKEN": CANARY + "-a"}
    r = agentos(rolling, "secret", "set", "B_TOKEN", "--scope", "role:worker", input=CANARY + "-b")
    assert r.returncode == 0, r.stderr
    old_id = secrets._parse_key(old, "o").key_id
    new_id = secrets._parse_key(new, "n").key_id
    assert _key_ids(db_url) == [old_id, new_id]
    # without the previous key, the new key alone does not open the old row
    r = agentos({**cli_env, "AGENTOS_SECRET_KEY": new}, "secret", "rekey")
    assert r.returncode == 2 and "AGENTOS_SECRET_KEY_PREVIOUS" in r.stderr
    assert _key_ids(db_url) == [old_id, new_id]
    r = agentos(rolling, "secret", "rekey")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"1 secret(s) re-encrypted under key {new_id}; 1 already were"
    assert _key_ids(db_url) == [new_id, new_id]
    assert _resolved(cli_env, db_url, AGENTOS_SECRET_KEY=new) == {
        "A_TOKEN": CANARY + "-a",
        "B_TOKEN": CANARY + "-b",
    }
    # --new-key is for the key file; with AGENTOS_SECRET_KEY set it is refused
    r = agentos({**cli_env, "AGENTOS_SECRET_KEY": new}, "secret", "rekey", "--new-key")
    assert r.returncode == 2 and r.stderr.startswith("error: --new-key replaces")
    assert _key_ids(db_url) == [new_id, new_id]


async def test_a_rotation_stopped_before_its_key_file_moved_is_finished_by_running_it_again(
    db_url: str, tmp_path: Path
) -> None:
    s = Settings(database_url=db_url, home=tmp_path / "h")  # type: ignore[arg-type]
    kernel = await Kernel(s).open(min_size=1, max_size=1)
    try:
        async with kernel.connection() as conn:
            await secrets.set_secret(
                conn, s, "A_TOKEN", CANARY, scopes=[secrets.Scope("role", "worker")]
            )
        old = secrets.load_key(s)
        # the rotation committed its rows under the new key, then stopped before the rename
        pending, made = secrets.write_pending_key(s)
        assert made
        async with kernel.connection() as conn:
            await secrets.rekey(conn, s, new_key=pending)
        assert secrets.load_key(s).key_id == old.key_id  # the key file is still the old one
        # every process still opens the rows: the pending key is one it reads with
        async with kernel.connection() as conn:
            got = await secrets.resolve(conn, s, ["A_TOKEN"], role="worker")
        assert got == {"A_TOKEN": CANARY}
        # running it again uses the same pending key (never a third one) and moves the file
        again, made = secrets.write_pending_key(s)
        assert not made and again.key_id == pending.key_id
        async with kernel.connection() as conn:
            done = await secrets.rekey(conn, s, new_key=again)
        secrets.install_pending_key(s)
        assert (done.rewritten, done.unchanged) == (0, 1)
        assert secrets.load_key(s).key_id == pending.key_id
        assert not secrets.pending_key_file(s).exists()
    finally:
        await kernel.close()
