"""`agentos skill`: the skills library."""

from __future__ import annotations

from typing import Any

import click
from agentos.cli.common import (
    CONTEXT,
    echo_json,
    fail,
    handle_errors,
    safe,
    with_conn,
)


@click.group(context_settings=CONTEXT)
def skill() -> None:
    """The skills library: markdown documents agents can list and read."""


@skill.command("add", context_settings=CONTEXT)
@click.argument("name")
@click.argument("file", type=click.File("rb"))
@click.option("--description", "-d", default="")
@click.option("--replace", is_flag=True, help="Replace an existing skill.")
@handle_errors
def skill_add(name: str, file: Any, description: str, replace: bool) -> None:
    """Add a skill from a markdown FILE (- for stdin)."""
    from agentos.cli.common import decode_text
    from agentos.kernel import skills
    from agentos.kernel.models import one_line, plain_text

    body = decode_text(file, f"skill file {file.name}")
    try:
        body = plain_text(body)
    except ValueError as exc:
        fail(f"skill file {file.name} {exc}", 2)
    try:
        description = one_line(description)
    except ValueError as exc:
        fail(f"the description {exc}", 2)

    with_conn(
        lambda conn: skills.add_skill(conn, name, body, description=description, replace=replace)
    )
    click.echo(f"skill {name} saved")


@skill.command("list", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def skill_list(as_json: bool) -> None:
    """List skills."""
    from agentos.kernel import skills

    rows = with_conn(lambda conn: skills.list_skills(conn))
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no skills")
    for sk in rows:
        name = sk["name"] if isinstance(sk, dict) else sk.name
        desc = sk["description"] if isinstance(sk, dict) else sk.description
        click.echo(f"{name:<24} {safe(desc)}")


@skill.command("show", context_settings=CONTEXT)
@click.argument("name")
@handle_errors
def skill_show(name: str) -> None:
    """Print a skill."""
    from agentos.kernel import skills

    sk = with_conn(lambda conn: skills.get_skill(conn, name))
    click.echo(safe(sk["body"] if isinstance(sk, dict) else sk.body, keep_newlines=True))
