"""`agentos secret`: credentials for MCP servers and executors, encrypted at rest.

Values are read from standard input only (never from an argument, which `ps` and the
shell's history would show), and never printed: `list` shows names, scopes and dates.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from agentos.cli.common import (
    CONTEXT,
    EXIT_BAD_INPUT,
    check_role_known,
    decode_text,
    echo_json,
    fail,
    handle_errors,
    safe,
    settings,
    with_conn,
)


@click.group("secret", context_settings=CONTEXT)
def secret() -> None:
    """Credentials handed to MCP servers and executors, never to a model.

    A secret applies globally or to one role, agent or task; a stage of task N run by
    agent A of role R uses the most specific one. Encrypted with AGENTOS_SECRET_KEY,
    else AGENTOS_HOME/secret.key (made 0600 on first use).
    """


def _read_value() -> str:
    if sys.stdin is None:
        fail("no standard input to read the secret's value from", EXIT_BAD_INPUT)
    if sys.stdin.isatty():
        value: str = click.prompt("value", hide_input=True, default="", show_default=False,
                                  err=True)  # fmt: skip
        if not value:
            fail("no value given; nothing changed", EXIT_BAD_INPUT)
        return value
    value = decode_text(sys.stdin.buffer, "the secret's value (stdin)", limit=64 * 1024)
    if not value.strip("\r\n"):
        fail(
            "the secret's value is read from standard input, which was empty "
            '(e.g. `printf %s "$TOKEN" | agentos secret set NAME`); nothing changed',
            EXIT_BAD_INPUT,
        )
    return value


async def _check_scopes(conn: Any, scopes: list[Any]) -> None:
    from agentos.kernel import tasks

    for s in scopes:
        if s.kind == "role":
            await check_role_known(conn, s.value)
        elif s.kind == "task":
            await tasks.get_task(conn, int(s.value))


@secret.command("set", context_settings=CONTEXT)
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    metavar="SCOPE",
    help="global (default), role:ROLE, agent:AGENT or task:ID; repeat for several.",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was stored as JSON.")
@handle_errors
def secret_set(name: str, scopes: tuple[str, ...], as_json: bool) -> None:
    """Store NAME's value, read from standard input (one trailing newline is dropped).

    \b
      printf %s "$GITHUB_TOKEN" | agentos secret set GITHUB_TOKEN --scope role:worker
      agentos secret set ANTHROPIC_API_KEY --scope role:worker < key.txt
    """
    from agentos.kernel import secrets as ksecrets

    ksecrets.check_name(name)
    parsed = [ksecrets.parse_scope(s) for s in scopes] or [ksecrets.GLOBAL]
    value = _read_value()
    ksecrets.check_value(value)
    s = settings()

    async def go(conn: Any) -> list[tuple[Any, bool]]:
        await _check_scopes(conn, parsed)
        return await ksecrets.set_secret(conn, s, name, value, scopes=parsed, actor="cli")

    stored = with_conn(go)
    if as_json:
        echo_json([{**info.model_dump(mode="json"), "replaced": r} for info, r in stored])
        return
    for info, replaced in stored:
        click.echo(f"secret {info.name} {'replaced' if replaced else 'set'} ({info.scope})")


@secret.command("list", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list).")
@handle_errors
def secret_list(as_json: bool) -> None:
    """Every secret's name, scope and dates (never a value)."""
    from agentos.kernel import secrets as ksecrets

    rows = with_conn(ksecrets.list_secrets)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no secrets (agentos secret set NAME)")
        return
    for r in rows:
        when = r.updated_at.strftime("%Y-%m-%d %H:%M")
        click.echo(f"{safe(r.name):<32} {safe(r.scope):<28} updated {when}")


@secret.command("rm", context_settings=CONTEXT)
@click.argument("name")
@click.option("--scope", default=None, metavar="SCOPE", help="Only this scope (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print the removed scopes as JSON.")
@handle_errors
def secret_rm(name: str, scope: str | None, as_json: bool) -> None:
    """Remove NAME (from every scope, or only --scope)."""
    from agentos.kernel import secrets as ksecrets

    ksecrets.check_name(name)
    parsed = ksecrets.parse_scope(scope) if scope is not None else None
    removed = with_conn(lambda conn: ksecrets.remove_secret(conn, name, scope=parsed))
    if as_json:
        echo_json([{"name": name, "scope": str(s)} for s in removed])
        return
    for s in removed:
        click.echo(f"secret {name} removed ({s})")


@secret.command("rekey", context_settings=CONTEXT)
@click.option(
    "--new-key",
    is_flag=True,
    help="Make a new AGENTOS_HOME/secret.key and move every secret to it (local key file).",
)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def secret_rekey(new_key: bool, as_json: bool) -> None:
    """Re-encrypt every secret under the current key (AGENTOS_SECRET_KEY, opening old
    ones with AGENTOS_SECRET_KEY_PREVIOUS), or with --new-key under a new key file.

    In one transaction: a secret no key here opens is an error and nothing changes."""
    from agentos.kernel import secrets as ksecrets

    s = settings()
    key_file = None
    if new_key:
        if s.secret_key is not None:
            fail(
                "--new-key replaces AGENTOS_HOME/secret.key, but AGENTOS_SECRET_KEY is set: "
                "give every process the new key as AGENTOS_SECRET_KEY and the old one as "
                "AGENTOS_SECRET_KEY_PREVIOUS, then run `agentos secret rekey` "
                "(docs/security.md)",
                EXIT_BAD_INPUT,
            )
        ksecrets.load_key(s)  # the key to rotate from must be here
        pending, made = ksecrets.write_pending_key(s)
        try:
            done = with_conn(lambda conn: ksecrets.rekey(conn, s, new_key=pending))
        except BaseException:
            if made:  # nothing was written under it
                ksecrets.pending_key_file(s).unlink(missing_ok=True)
            raise
        ksecrets.install_pending_key(s)
        key_file = str(s.secret_key_file)
    else:
        done = with_conn(lambda conn: ksecrets.rekey(conn, s))
    if as_json:
        echo_json({**done.__dict__, "key_file": key_file})
        return
    click.echo(
        f"{done.rewritten} secret(s) re-encrypted under key {done.key_id}"
        + (f"; {done.unchanged} already were" if done.unchanged else "")
    )
    if key_file:
        click.echo(f"the new key is in {key_file} (the old one is gone)")


@secret.command("keygen", context_settings=CONTEXT)
def secret_keygen() -> None:
    """Print a new key for AGENTOS_SECRET_KEY (nothing is stored)."""
    from agentos.kernel.secrets import generate_key

    click.echo(generate_key())
