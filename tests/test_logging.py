"""Log lines (issue 12): JSON lines carry the `extra=` fields the code passes, and no
line, JSON or text, carries a secret of the process, whatever logged it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

KEY = "sk-live-logging-test-0123456789"
PASSWORD = "pw-logging-test-9876"

PROGRAM = f"""
import logging, sys
from agentos.cli.common import setup_logging
setup_logging("INFO", sys.argv[1])
log = logging.getLogger("agentos.test")
log.info("claimed", extra={{"action": "claim", "task": 7, "agent": "w-1", "attempt": 2,
                           "duration_ms": 12.5, "role": "worker", "other": "not a field"}})
log.warning("provider said: Incorrect API key provided: {KEY}",
            extra={{"action": "llm.error", "agent": "w-1 {KEY}"}})
log.warning("connecting to postgresql://agentos:{PASSWORD}@db/agentos failed")
log.warning("retrying with host=db user=agentos password={PASSWORD}")
try:
    raise RuntimeError("boom with {KEY} inside")
except RuntimeError:
    log.exception("handler failed", extra={{"task": 8}})
"""


def _run(fmt: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_")}
    env.update(
        OPENAI_API_KEY=KEY,
        AGENTOS_DATABASE_URL=f"postgresql://agentos:{PASSWORD}@db/agentos",
    )
    r = subprocess.run(
        [sys.executable, "-c", PROGRAM, fmt], env=env, capture_output=True, text=True, check=True
    )
    return r.stderr


def test_json_lines_carry_the_fields_and_never_a_secret() -> None:
    out = _run("json")
    assert KEY not in out and PASSWORD not in out
    lines = [json.loads(ln) for ln in out.splitlines()]
    assert len(lines) == 5
    claimed, llm, url, conninfo, failed = lines
    assert claimed["message"] == "claimed"
    assert {
        k: claimed[k] for k in ("action", "task", "agent", "attempt", "duration_ms", "role")
    } == {
        "action": "claim",
        "task": 7,
        "agent": "w-1",
        "attempt": 2,
        "duration_ms": 12.5,
        "role": "worker",
    }
    assert "other" not in claimed  # only the known fields, never whatever was passed
    # one redactor for logs and the database (kernel/redact.py): each value by its name
    key = "[secret:OPENAI_API_KEY]"
    assert llm["message"].endswith(key) and llm["agent"] == f"w-1 {key}"
    # the whole URL is a secret, and its password alone too
    assert url["message"] == "connecting to [secret:AGENTOS_DATABASE_URL] failed"
    assert conninfo["message"].endswith("password=[secret:AGENTOS_DATABASE_URL_PASSWORD]")
    assert failed["task"] == 8 and f"RuntimeError: boom with {key} inside" in failed["exc"]


def test_text_lines_never_carry_a_secret_either() -> None:
    out = _run("text")
    assert KEY not in out and PASSWORD not in out
    assert out.count("[secret:") >= 4
