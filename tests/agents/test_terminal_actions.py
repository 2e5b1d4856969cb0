"""Terminal actions are tools: checked when a role loads, validated like any tool input,
and their result (not a callback into the loop) says how the stage ends."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agentos.agents import terminal
from agentos.agents.config import AgentSettings, load_role
from agentos.kernel import errors

PROMPTS = "prompts: {system: worker_system.j2, task: worker_task.j2}\n"


def _role(tmp_path: Path, name: str, body: str) -> AgentSettings:
    roles = tmp_path / "roles"
    roles.mkdir(exist_ok=True)
    (roles / f"{name}.yaml").write_text(f"name: {name}\nmodel: agentos/scripted\n{PROMPTS}{body}")
    return AgentSettings(home=tmp_path / "h", roles_dir=roles)


@pytest.mark.parametrize(
    "body, needle",
    [
        ("actions: [submit_for_reviw]\n", "unknown action 'submit_for_reviw'"),
        ("actions: [approve]\n", "action 'approve' cannot end a work stage"),
        ("stage: plan\nactions: [submit_for_review]\n", "cannot end a plan stage"),
        ("stage: judge\n", "stage"),
        ("tools: [read_fil]\n", "unknown tool 'read_fil'"),
    ],
)
def test_a_role_with_a_bad_action_or_tool_fails_when_it_loads(
    tmp_path: Path, body: str, needle: str
) -> None:
    s = _role(tmp_path, "custom", body)
    with pytest.raises(errors.BadInput, match=needle) as exc:
        load_role("custom", s)
    assert "\n" not in str(exc.value)


def test_shipped_roles_declare_their_stage_and_valid_actions(tmp_path: Path) -> None:
    s = AgentSettings(home=tmp_path / "h")
    stages = {r: load_role(r, s).stage for r in ("orchestrator", "worker", "reviewer")}
    assert stages == {"orchestrator": "plan", "worker": "work", "reviewer": "review"}
    # a custom role without `stage:` is a worker-like role
    assert load_role("custom", _role(tmp_path, "custom", "actions: [block]\n")).stage == "work"


def test_a_bad_role_is_a_one_line_error_from_agent_run(tmp_path: Path) -> None:
    s = _role(tmp_path, "custom", "actions: [aprove]\n")
    env = {
        "AGENTOS_HOME": str(s.home),
        "AGENTOS_ROLES_DIR": str(s.roles_dir),
        "AGENTOS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "PATH": "/usr/bin:/bin",
    }
    r = subprocess.run(
        [sys.executable, "-m", "agentos.cli.main", "agent", "run", "--role", "custom"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == [lines[0]] and "unknown action 'aprove'" in lines[0], r.stderr


@pytest.mark.parametrize(
    "name, args",
    [
        ("submit_for_review", {"summary": "   "}),
        ("submit_for_review", {}),
        ("reject", {"feedback": "x", "extra": 1}),
        ("approve", "not json"),
    ],
)
def test_bad_arguments_are_a_refusal_the_model_reads(name: str, args: Any) -> None:
    # the action's function is never reached: no context is needed to refuse
    ending = asyncio.run(terminal.ACTIONS[name].run(None, args))  # type: ignore[arg-type]
    assert ending.ok is False and ending.then is None
    assert ending.output.startswith("error: ")


def test_every_action_has_a_function_calling_schema() -> None:
    for action in terminal.ACTIONS.values():
        fn = action.schema()["function"]
        assert fn["name"] == action.name and fn["description"]
        params = fn["parameters"]
        assert params["additionalProperties"] is False
        assert len(params["required"]) == 1 and set(params["required"]) == set(params["properties"])
