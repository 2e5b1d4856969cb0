"""`agentos tool list` and `agentos doctor` through the real CLI."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest


def test_tool_list_shows_a_roles_tools_actions_and_the_sandbox(run_cli: Any) -> None:
    r = run_cli("tool", "list", "--role", "worker", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    names = {x["name"]: x for x in rows}
    assert names["run_command"]["source"] == "built-in" and "sandbox" in names["run_command"]
    assert names["submit_for_review"]["kind"] == "action"
    text = run_cli("tool", "list", "--role", "reviewer")
    assert text.returncode == 0 and "sandbox:" in text.stdout and "approve" in text.stdout
    bad = run_cli("tool", "list", "--role", "nope")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown role" in bad.stderr


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (.ci/run installs it)")
def test_doctor_runs_the_escape_probes_and_passes_on_a_migrated_database(run_cli: Any) -> None:
    r = run_cli("doctor", "--json", timeout=180)
    checks = {c["name"]: c for c in json.loads(r.stdout)}
    assert checks["database"]["ok"] and checks["sandbox"]["ok"], checks
    probes = [c for n, c in checks.items() if n.startswith("probe ")]
    assert len(probes) >= 6 and all(p["ok"] for p in probes), probes
    assert r.returncode == 0, r.stdout


def test_doctor_fails_when_the_sandbox_cannot_run(run_cli: Any, cli_env: dict[str, str]) -> None:
    from tests.conftest import agentos

    r = agentos({**cli_env, "AGENTOS_SANDBOX_BWRAP": "no-such-bwrap"}, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(r.stdout)}
    assert r.returncode == 1 and not checks["sandbox"]["ok"]
    assert "not found" in checks["sandbox"]["detail"]
