"""Shared fixtures for the Helm chart, Dockerfile and scaler tests.

The chart is rendered and linted offline with the real Helm SDK (helm-python-sdk
binds Helm's Go library); manifests are validated with kubernetes-validate.
The value sets are the chart's own `charts/agentos/ci/*-values.yaml` files
(chart-testing's convention), so `ct lint` would exercise the same ones.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "agentos"
CI_VALUES = CHART / "ci"
RELEASE = "team"
NAMESPACE = "agents"
# Kubernetes versions the manifests must validate against: the oldest the chart
# claims (Chart.yaml kubeVersion) and a recent one.
KUBE_VERSIONS = ("1.27.0", "1.33.0")
# Kinds that are not part of Kubernetes: checked by hand in the tests.
CUSTOM_KINDS = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}

VALUE_SETS = sorted(p.name.removesuffix("-values.yaml") for p in CI_VALUES.glob("*-values.yaml"))


def load_values(name: str) -> dict[str, Any]:
    """A ci/ value set by short name (`url` -> ci/url-values.yaml)."""
    data = yaml.safe_load((CI_VALUES / f"{name}-values.yaml").read_text())
    assert isinstance(data, dict)
    return data


@functools.cache
def _chart() -> Any:
    return helm.Chart.load(str(CHART))


def render_raw(values: dict[str, Any] | None) -> dict[str, str]:
    """Template path -> rendered text, as `helm template` would produce."""
    return _chart().render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def render(values: dict[str, Any] | None) -> list[dict[str, Any]]:
    """All rendered Kubernetes objects (NOTES.txt excluded), each with
    `_template` set to the template it came from."""
    docs: list[dict[str, Any]] = []
    for path, text in sorted(render_raw(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc["_template"] = path
                docs.append(doc)
    return docs


def notes(values: dict[str, Any] | None) -> str:
    return next(t for p, t in render_raw(values).items() if p.endswith("NOTES.txt"))


def strip(doc: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a rendered object without the test's `_` bookkeeping keys."""
    return copy.deepcopy({k: v for k, v in doc.items() if not k.startswith("_")})


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload and bare pod."""
    out = []
    for d in docs:
        name = f"{d['kind']}/{d['metadata']['name']}"
        if d["kind"] in {"Deployment", "StatefulSet", "Job", "DaemonSet"}:
            out.append((name, d["spec"]["template"]["spec"]))
        elif d["kind"] == "Pod":
            out.append((name, d["spec"]))
    return out


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    """Container env as name -> value or valueFrom."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def load_scaler_module() -> Any:
    """agents/scaler.py by path: it imports no project module, so it needs no install."""
    name = "agentos_chart_tests_scaler"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "agents" / "scaler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@functools.cache
def rendered_set(name: str) -> tuple[dict[str, Any], ...]:
    """Rendered objects of a ci/ value set (cached: rendering is deterministic
    apart from the bundled database's generated password)."""
    return tuple(render(load_values(name)))


@pytest.fixture(params=VALUE_SETS)
def value_set(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def chart() -> Any:
    """The helpers above (tests cannot import conftest under --import-mode=importlib)."""
    return sys.modules[__name__]


@pytest.fixture(scope="session")
def scaler_module() -> Any:
    return load_scaler_module()
