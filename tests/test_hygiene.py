"""Import hygiene and layer rules, checked for real."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_help_does_not_import_heavy_packages() -> None:
    code = (
        "import sys\n"
        "from agentos.cli.main import cli\n"
        "try:\n    cli(['--help'], prog_name='agentos')\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'litellm', 'textual', 'playwright', 'kubernetes', 'pgqueuer'})\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout, out.stdout


def test_every_command_has_help() -> None:
    for args in (
        ["--help"],
        ["task", "create", "--help"],
        ["db", "--help"],
        ["log", "--help"],
        ["schedule", "add", "--help"],
        ["bench", "wake", "--help"],
        ["-h"],
    ):
        r = subprocess.run(
            [sys.executable, "-m", "agentos.cli.main", *args], capture_output=True, text=True
        )
        assert r.returncode == 0 and "Usage:" in r.stdout, (args, r.stderr)


def test_layers_point_one_way(tmp_path: Path) -> None:
    """import-linter's contract in pyproject.toml: cli, tui -> agents -> tools -> kernel -> sql.

    The editable install maps folders with an import hook that grimp cannot follow, so
    the test lays the package out on disk (symlinks) and points import-linter at it.
    """
    pkg = tmp_path / "agentos"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for sub in ("kernel", "agents", "tools", "sql", "cli", "tui"):
        (pkg / sub).symlink_to(ROOT / sub)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    r = subprocess.run(
        ["lint-imports", "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 kept, 0 broken" in r.stdout, r.stdout


def test_kernel_never_imports_upper_layers() -> None:
    code = (
        "import sys, agentos.kernel.db, agentos.kernel.runtime, agentos.kernel.duties, "
        "agentos.kernel.bench\n"
        "print(sorted(m for m in sys.modules if m.startswith(('agentos.agents', 'agentos.tools', "
        "'agentos.cli', 'agentos.tui'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ruff_is_clean() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "kernel", "cli", "sql", "agents", "tests"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_strict_on_the_whole_package(tmp_path: Path) -> None:
    """mypy --strict over every subpackage of agentos, laid out on disk as for import-linter."""
    pkg = tmp_path / "agentos"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for sub in ("kernel", "agents", "tools", "sql", "cli", "tui"):
        (pkg / sub).symlink_to(ROOT / sub)
    env = {**os.environ, "MYPYPATH": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                        "--cache-dir", str(tmp_path / ".mypy_cache"),
                        "-p", "agentos"],
                       capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


# SQL is written in capitals here (a Python `from agentos.x import` must not match)
SQL_ON_OUR_TABLES = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|TRUNCATE)\b[^\"']*\bagentos\.[a-z_]+|\bFROM\s+agentos\.[a-z_]+"
)
RUNS_SQL = re.compile(r"\bconn\.execute\(|\bcursor\(\)|\bquery\(\s*[\"']")


def test_only_the_kernel_runs_sql_on_agentos_tables() -> None:
    """Issue 13: every statement on agentos.* lives in sql/*.sql and only kernel/ runs
    it. The bench modules fill scratch databases and are the one allowed exception."""
    offenders = []
    for package in ("agents", "tools", "cli", "tui"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "bench.py":
                continue
            text = path.read_text(encoding="utf-8")
            for n, line in enumerate(text.splitlines(), 1):
                if SQL_ON_OUR_TABLES.search(line) or RUNS_SQL.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "SQL above the kernel:\n" + "\n".join(offenders)


# From this migration on, a function the kernel's statements call by name is never
# replaced: a rolling deploy runs the previous release's processes beside the new ones,
# and they still call the old function with its old meaning. A changed function gets a
# versioned name (agentos.reserve_budget_v2 beside agentos.reserve_budget, 004).
VERSIONED_FROM = 7
_FUNCTION = re.compile(r"CREATE\s+(OR\s+REPLACE\s+)?FUNCTION\s+agentos\.([a-z_0-9]+)\s*\(", re.I)


def _functions_replaced_in_place(migrations: list[tuple[int, str]], called: set[str]) -> list[str]:
    defined: dict[str, int] = {}
    problems = []
    for number, text in migrations:
        for m in _FUNCTION.finditer(text):
            name = m.group(2)
            if name in defined and name in called and number >= VERSIONED_FROM:
                problems.append(
                    f"migration {number:03d} redefines agentos.{name} (from {defined[name]:03d}), "
                    f"which the kernel's statements call: add agentos.{name}_v2 instead"
                )
            defined.setdefault(name, number)
    return problems


def test_functions_the_kernel_calls_get_new_names_not_new_bodies() -> None:
    from agentos import sql

    called = {
        name
        for text in [*sql.queries().values(), *sql.tui_queries().values()]
        for name in re.findall(r"agentos\.([a-z_0-9]+)\s*\(", text)
    }
    migrations = [(int(m.version), m.sql) for m in sql.migrations()]
    assert _functions_replaced_in_place(migrations, called) == []
    # and the rule bites: a later migration replacing a called function is named
    bad = [*migrations, (99, "CREATE OR REPLACE FUNCTION agentos.session_alive(x int)")]
    assert any("agentos.session_alive_v2" in p for p in _functions_replaced_in_place(bad, called))
