"""What can be checked of the Dockerfile without a Docker engine: a pinned base,
a non-root numeric USER, the `agentos` entry point, the browser build argument,
shell syntax of every RUN, and a build context that holds the whole package."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuations joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comment lines inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "dangling line continuation"
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions():
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def global_args() -> dict[str, str]:
    args = {}
    for word, rest in instructions():
        if word == "FROM":
            break
        if word == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
    return args


def package_dirs() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return sorted(pyproject["tool"]["setuptools"]["package-dir"].values())


def test_base_image_is_pinned() -> None:
    args = global_args()
    froms = [rest.split()[0] for word, rest in instructions() if word == "FROM"]
    assert froms, "no FROM"
    for image in froms:
        resolved = re.sub(r"\$\{?(\w+)\}?", lambda m: args[m.group(1)], image)
        name, _, tag = resolved.partition("@")[0].rpartition(":")
        assert name == "python", resolved
        # A patch release of 3.11 on a named Debian release, never a floating tag.
        assert re.fullmatch(r"3\.11\.\d+-slim-(bookworm|trixie)", tag), resolved
        assert "latest" not in resolved


def test_runs_as_a_fixed_non_root_user() -> None:
    final = stages()[-1]
    users = [rest for word, rest in final if word == "USER"]
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) >= 10000, "USER must be a numeric uid (runAsNonRoot)"
    assert not gid or (gid.isdigit() and int(gid) > 0)
    # The chart's default runAsUser matches.
    import yaml

    values = yaml.safe_load((ROOT / "charts/agentos/values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert any(word == "WORKDIR" for word, _ in final)


def test_entrypoint_is_agentos() -> None:
    final = dict((w, r) for w, r in stages()[-1] if w in {"ENTRYPOINT", "CMD"})
    assert final["ENTRYPOINT"] == '["agentos"]'
    assert final["CMD"] == '["--help"]'


def test_git_and_optional_browser() -> None:
    text = " ".join(rest for word, rest in instructions() if word == "RUN")
    assert re.search(r"apt-get install[^;]*\bgit\b", text)
    assert "playwright install" not in text, "browsers come from Debian, not Playwright's CDN"
    arg_defaults = [rest for stage in stages() for word, rest in stage if word == "ARG"] + [
        f"{k}={v}" for k, v in global_args().items()
    ]
    assert "INSTALL_BROWSER=false" in arg_defaults
    # chromium and the browser extra are installed only behind the build argument.
    for needle in ("chromium", "[browser]"):
        runs = [rest for word, rest in instructions() if word == "RUN" and needle in rest]
        assert runs, f"{needle} is never installed"
        for run in runs:
            guarded = re.search(
                r'if \[ "\$INSTALL_BROWSER" = "true" \]; then[^;]*' + re.escape(needle), run
            )
            assert guarded, f"{needle} is installed unconditionally"
    assert "--no-install-recommends" in text
    assert "rm -rf /var/lib/apt/lists/*" in text


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell")
def test_run_commands_are_valid_shell() -> None:
    for word, rest in instructions():
        if word != "RUN" or rest.startswith("["):
            continue
        done = subprocess.run(["sh", "-n", "-c", rest], capture_output=True, text=True)
        assert done.returncode == 0, f"{rest}\n{done.stderr}"


def test_build_context_holds_the_package() -> None:
    """`pip install .` in the image needs pyproject, the readme and every subpackage."""
    copied: set[str] = set()
    for word, rest in stages()[0]:
        if word == "COPY" and "--from" not in rest:
            *sources, _dest = rest.split()
            copied.update(s.rstrip("/") for s in sources)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {"pyproject.toml", *package_dirs()}
    readme = pyproject["project"].get("readme")
    if isinstance(readme, str):
        needed.add(readme)
    assert needed <= copied, f"not copied into the build stage: {needed - copied}"

    ignore = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    ignore = [line for line in ignore if line and not line.startswith("#")]
    assert ignore[0] == "**", ".dockerignore is an allow-list"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert needed <= allowed, f"excluded from the build context: {needed - allowed}"
    for secret_like in (".git", ".env", "tests", "charts"):
        assert secret_like not in allowed


def test_image_defaults_match_the_chart(chart: Any) -> None:
    """The image's writable paths and health port are the ones the chart mounts and probes."""
    env_line = " ".join(rest for word, rest in stages()[-1] if word == "ENV")
    env = dict(re.findall(r"(\w+)=(\S+)", env_line))
    deployment = chart.one(chart.rendered_set("url"), "Deployment", "team-agentos-worker")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    chart_env = chart.env_of(container)
    for var in ("AGENTOS_HOME", "AGENTOS_WORKSPACE", "HOME", "AGENTOS_HEALTH_PORT"):
        assert env[var] == chart_env[var], var
    exposed = [rest for word, rest in stages()[-1] if word == "EXPOSE"]
    assert exposed == [chart_env["AGENTOS_HEALTH_PORT"]]
