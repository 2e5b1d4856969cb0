"""Agents as data through the real CLI: create, show, edit, duplicate, rm, memory; bad
input is one line, an exit code, and nothing changed."""

from __future__ import annotations

import json
from typing import Any

import psycopg


def _ok(r: Any) -> Any:
    assert r.returncode == 0, r.stderr
    return r


def _refused(r: Any, code: int, text: str) -> None:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert text in r.stderr, r.stderr


def test_create_show_edit_duplicate_and_remove(run_cli: Any, db_url: str) -> None:
    _ok(run_cli("skill", "add", "py-style", "-", "-d", "How we write Python", input="# Style\n"))
    r = _ok(
        run_cli(
            "agent", "create", "ada", "--role", "worker", "--model", "openai/gpt-4o",
            "--description", "Writes the parsers", "--skill", "py-style",
            "--instructions", "-",
            input="Prefer small functions.\nAlways add a test.\n",
        )
    )  # fmt: skip
    assert r.stdout.startswith("created agent ada (worker, model openai/gpt-4o)")
    shown = _ok(run_cli("agent", "show", "ada")).stdout
    for text in (
        "ada (worker)",
        "description: Writes the parsers",
        "model: openai/gpt-4o (its own)",
        "status: offline",
        "current task: -",
        "cost today: $0.0000 (0 calls)",
        "skills: py-style (How we write Python)",
        "instructions: Prefer small functions.\nAlways add a test.",
        "memory: (empty)",
    ):
        assert text in shown, (text, shown)
    data = json.loads(_ok(run_cli("agent", "show", "ada", "--json")).stdout)
    assert (
        data["defined"] and data["role"] == "worker" and data["model_override"] == "openai/gpt-4o"
    )
    assert data["alive"] is False and data["skills"] == ["py-style"] and data["work"] == []
    listed = _ok(run_cli("agent", "list")).stdout
    assert listed.startswith("ada ") and "worker" in listed

    r = _ok(run_cli("agent", "edit", "ada", "--model", "", "--role", "reviewer", "--drop-skill",
                    "py-style", "-d", "Reviews the parsers"))  # fmt: skip
    assert "agent ada (reviewer, model the role's) changed" in r.stdout
    data = json.loads(_ok(run_cli("agent", "show", "ada", "--json")).stdout)
    assert (data["role"], data["model_override"], data["skills"]) == ("reviewer", None, [])
    assert data["role_model"] == "openai/gpt-4o"  # the shipped reviewer's
    assert "model: openai/gpt-4o (the role's)" in _ok(run_cli("agent", "show", "ada")).stdout
    assert data["description"] == "Reviews the parsers"

    _ok(run_cli("agent", "memory", "edit", "ada", input="The parser lives in parse.py.\n"))
    assert (
        _ok(run_cli("agent", "memory", "show", "ada")).stdout == "The parser lives in parse.py.\n"
    )
    r = _ok(run_cli("agent", "duplicate", "ada", "ada-2"))
    assert "created agent ada-2 (reviewer) as a copy of ada" in r.stdout
    copy = json.loads(_ok(run_cli("agent", "show", "ada-2", "--json")).stdout)
    assert copy["memory"] == "The parser lives in parse.py.\n" and copy["defined"]
    assert copy["instructions"] == "Prefer small functions.\nAlways add a test."
    fresh = json.loads(
        _ok(run_cli("agent", "duplicate", "ada", "ada-3", "--no-memory", "--json")).stdout
    )
    assert fresh["memory"] == ""

    _ok(run_cli("agent", "rm", "ada-2"))
    _refused(run_cli("agent", "show", "ada-2"), 3, "no agent 'ada-2'")
    with psycopg.connect(db_url) as conn:
        log = conn.execute(
            "SELECT kind, actor, message FROM agentos.activities WHERE kind LIKE 'agent.%' "
            "ORDER BY id"
        ).fetchall()
    kinds = [k for k, _, _ in log]
    assert kinds == [
        "agent.created", "agent.edited", "agent.memory", "agent.created", "agent.created",
        "agent.removed",
    ]  # fmt: skip
    assert log[1][2] == "agent ada: role, description, skills, model changed"
    assert log[-1][:2] == ("agent.removed", log[0][1])  # the person who removed it


def test_bad_input_changes_nothing(run_cli: Any, db_url: str) -> None:
    _ok(run_cli("agent", "create", "bob", "--role", "worker"))
    _refused(run_cli("agent", "create", "bob", "--role", "worker"), 2, "agent bob exists")
    _refused(run_cli("agent", "create", "eve", "--role", "nosuchrole"), 2, "unknown role")
    _refused(run_cli("agent", "create", "Eve!", "--role", "worker"), 2, "bad agent name")
    _refused(
        run_cli("agent", "create", "eve", "--role", "worker", "--model", "a b"), 2, "bad model"
    )
    _refused(
        run_cli("agent", "create", "eve", "--role", "worker", "--skill", "nope"), 2, "no skill nope"
    )
    _refused(run_cli("agent", "edit", "bob"), 2, "nothing to change")
    _refused(run_cli("agent", "edit", "zed", "--model", "x"), 3, "no agent 'zed'")
    _refused(run_cli("agent", "duplicate", "bob", "bob"), 2, "agent bob exists")
    _refused(run_cli("agent", "rm", "zed"), 3, "no agent 'zed'")
    _refused(run_cli("agent", "memory", "show", "zed"), 3, "no agent 'zed'")
    _refused(run_cli("agent", "memory", "edit", "bob", input="x" * 20_001), 2, "the limit is 20000")
    with psycopg.connect(db_url) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM agentos.agents ORDER BY name")]
        memory = conn.execute("SELECT memory FROM agentos.agents WHERE name = 'bob'").fetchone()
    assert names == ["bob"] and memory == ("",)


def test_rm_is_refused_while_the_agent_holds_work(run_cli: Any, db_url: str) -> None:
    _ok(run_cli("agent", "create", "cy", "--role", "worker"))
    t = json.loads(_ok(run_cli("task", "create", "For cy", "--assign", "cy", "--json")).stdout)
    _refused(run_cli("agent", "rm", "cy"), 2, f"agent cy holds work (#{t['id']} assigned)")
    _refused(run_cli("agent", "edit", "cy", "--role", "reviewer"), 2, "its role can change once")
    shown = _ok(run_cli("agent", "show", "cy")).stdout
    assert f"holds: #{t['id']} assigned" in shown
    _ok(run_cli("task", "cancel", str(t["id"])))
    _ok(run_cli("agent", "rm", "cy"))
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM agentos.agents").fetchone() == (0,)


def test_memory_edit_opens_editor_on_a_terminal(
    run_cli: Any, cli_env: dict[str, str], tmp_path: Any
) -> None:
    """On a terminal `agent memory edit` runs $EDITOR on the current memory."""
    import os
    import pty
    import subprocess
    import sys

    _ok(run_cli("agent", "create", "dee", "--role", "worker"))
    _ok(run_cli("agent", "memory", "edit", "dee", input="first note\n"))
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "s/first/edited/" "$1"\necho "second note" >> "$1"\n')
    editor.chmod(0o755)
    primary, secondary = pty.openpty()
    try:
        r = subprocess.run(
            [sys.executable, "-m", "agentos.cli.main", "agent", "memory", "edit", "dee"],
            env={**cli_env, "EDITOR": str(editor)},
            stdin=secondary,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(secondary)
        os.close(primary)
    assert r.returncode == 0, r.stderr
    assert "memory of dee rewritten" in r.stdout
    assert _ok(run_cli("agent", "memory", "show", "dee")).stdout == "edited note\nsecond note\n"
