"""`agentos bench footprint`: the local team's memory after the demo, in the same run
beside its baseline (one process per role, how teams ran before one process hosted
them all).

Each layout runs `agentos start --demo` in a scratch AGENTOS_HOME with its own embedded
server, waits for the demo goal to be done, sums the proportional set size (PSS: shared
pages split between the processes that map them) of the supervisor, its children and
the embedded server's processes, then stops it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
from agentos.cli.common import echo_json, handle_errors


def _pss(pid: int, pgdata: Path) -> tuple[int, int]:
    """(PSS bytes, processes) of pid's tree and the server running on pgdata."""
    import psutil

    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if any(str(pgdata) in c for c in cmd):
            procs += [p, *p.children(recursive=True)]
    seen: set[int] = set()
    total = 0
    for p in procs:
        if p.pid in seen:
            continue
        seen.add(p.pid)
        try:
            total += p.memory_full_info().pss
        except (psutil.Error, AttributeError):
            continue
    return total, len(seen)


def _goal_status(env: dict[str, str]) -> str | None:
    out = subprocess.run(
        [sys.executable, "-m", "agentos.cli.main", "task", "show", "1", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0:
        return None
    return str(json.loads(out.stdout).get("status"))


def measure(extra: list[str], timeout: float = 300) -> dict[str, Any]:
    """Run the demo with `agentos start --demo EXTRA` and measure it once it is done."""
    with tempfile.TemporaryDirectory(prefix="agentos-footprint-") as tmp:
        home = Path(tmp) / "home"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_")}
        env["AGENTOS_HOME"] = str(home)
        logf = (Path(tmp) / "agentos.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "agentos.cli.main", "start", "--demo", *extra],
            env=env,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            started = time.monotonic()
            status = None
            while time.monotonic() - started < timeout and proc.poll() is None:
                status = _goal_status(env)
                if status in ("done", "blocked", "failed"):
                    break
                time.sleep(1)
            if status != "done":
                lines = (Path(tmp) / "agentos.log").read_text().strip().splitlines()
                last = lines[-1] if lines else "no output"
                raise click.ClickException(f"the demo did not finish (goal {status}): {last}")
            time.sleep(2)  # let the team settle into idle
            pss, n = _pss(proc.pid, home / "pgdata")
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            logf.close()
    return {"layout": " ".join(extra) or "one process", "pss_mb": round(pss / 2**20, 1),
            "processes": n}  # fmt: skip


@click.command("footprint")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def bench_footprint(as_json: bool) -> None:
    """Memory (PSS) of the demo team after its goal is done, beside one process per role."""
    team = measure([])
    base = measure(["--process-per-role"])
    result = {"team": team, "baseline": base, "ratio": round(team["pss_mb"] / base["pss_mb"], 2)}
    if as_json:
        echo_json(result)
        return
    for r in (team, base):
        click.echo(f"{r['layout']:<22} {r['pss_mb']:8.1f} MB PSS  ({r['processes']} processes)")
    click.echo(f"ratio {result['ratio']:.2f} (one process / one per role)")
