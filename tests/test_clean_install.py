"""The README's first command on a clean machine: a fresh virtualenv, `pip install -e .`
without the dev extras, then `agentos start --demo` ends with the demo goal done and
both subtasks merged.

This is what every new user runs first, and the suite's own environment has packages
(pytest among them) that such a venv does not; so the test builds a venv of its own.
It needs PyPI (or pip's cache) and takes a minute or two: marked `slow`, and run by
`.ci/run` like every other test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "-e", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    return venv


def test_the_readme_first_command_runs_the_demo_to_done_in_a_fresh_venv(tmp_path: Path) -> None:
    venv = _venv(tmp_path)
    bin_ = venv / "bin"
    # what `source venv/bin/activate` does, and nothing of this test run's environment
    env = {
        "PATH": f"{bin_}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "VIRTUAL_ENV": str(venv),
        "HOME": str(tmp_path / "user"),
        "LANG": "C.UTF-8",
        "AGENTOS_HOME": str(tmp_path / "agentos-home"),
    }
    (tmp_path / "user").mkdir()
    probe = subprocess.run(
        [
            str(bin_ / "python"),
            "-c",
            "import importlib.util as u; print(bool(u.find_spec('pytest_asyncio')))",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert probe.stdout.strip() == "False", "the venv must not have the dev extras"
    log = (tmp_path / "demo.log").open("w")
    proc = subprocess.Popen(
        [str(bin_ / "agentos"), "start", "--demo"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        start_new_session=True,
    )
    statuses: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "demo.log").read_text()[-4000:]
            out = subprocess.run(
                [str(bin_ / "agentos"), "task", "list", "--json"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            if out.returncode == 0 and out.stdout.strip():
                statuses = {t["id"]: t["status"] for t in json.loads(out.stdout)}
                if statuses.get(1) in ("done", "blocked", "failed"):
                    break
            time.sleep(2)
        shown = subprocess.run(
            [str(bin_ / "agentos"), "task", "list", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        tasks = json.loads(shown.stdout) if shown.returncode == 0 else []
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
        log.close()
    text = (tmp_path / "demo.log").read_text()
    assert statuses.get(1) == "done", text[-4000:]
    subtasks = [t for t in tasks if t.get("parent_id") == 1]
    assert len(subtasks) == 2 and all(t["status"] == "done" for t in subtasks), tasks
    assert code == 0, text[-4000:]
    # both branches really are on main of the workspace
    repo = tmp_path / "agentos-home" / "workspace"
    files = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", "main"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert {"greetings.py", "farewells.py"} <= set(files)
