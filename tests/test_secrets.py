"""The secrets store (issue 10): encrypted at rest, scoped, read from stdin only, never
shown, and redacted from everything the kernel writes and every log line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import stat
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from agentos.kernel import activities, errors, messages, redact, secrets, steps, tasks
from agentos.kernel.db import Kernel
from agentos.kernel.settings import Settings


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
