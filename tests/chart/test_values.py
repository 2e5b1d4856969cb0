"""values.schema.json rejects bad values (through Helm itself, as `helm install`
would), and values.yaml and the chart README document every value."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python")

URL = {"database": {"url": "postgresql://agentos:pw@db:5432/agentos"}}


def _with(**overrides: Any) -> dict[str, Any]:
    return {**URL, **overrides}


BAD_VALUES = [
    # (values, fragment of Helm's message naming the offending place)
    (_with(roles={"worker": {"replicas": "two"}}), "/roles/worker/replicas"),
    (_with(roles={"worker": {"replica": 3}}), "additional properties 'replica' not allowed"),
    (_with(roles={"worker": {"replicas": -1}}), "/roles/worker/replicas"),
    (_with(roles={"worker": {"concurrency": 0}}), "/roles/worker/concurrency"),
    (_with(roles={"Bad_Role": {"replicas": 1}}), "invalid propertyName 'Bad_Role'"),
    (_with(roles={"a-very-long-role-name-that-overflows": {}}), "invalid propertyName"),
    (_with(roles={"worker": {"env": [{"value": "x"}]}}), "/roles/worker/env/0"),
    (_with(roles={"worker": {"pdb": {"maxUnavailable": "half"}}}), "/roles/worker/pdb"),
    (_with(image={"tag": "latest"}), "/image/tag"),
    (_with(image={"digest": "sha256:abc"}), "/image/digest"),
    (_with(imagePullPolicy="Always"), "additional properties 'imagePullPolicy' not allowed"),
    ({"database": {"url": "mysql://db/x"}}, "/database/url"),
    (_with(database={"port": "5432"}), "/database/port"),
    (_with(llm={"baseUrl": "vllm:8000"}), "/llm/baseUrl"),
    (_with(roleConfigs={"worker.json": "{}"}), "invalid propertyName 'worker.json'"),
    (_with(roleConfigs={"worker.yaml": {"name": "worker"}}), "/roleConfigs/worker.yaml"),
    (_with(autoscaling={"keda": {"minReplicaCount": "0"}}), "/autoscaling/keda/minReplicaCount"),
    (_with(autoscaling={"keda": {"enable": True}}), "additional properties 'enable' not allowed"),
    (_with(podSecurityContext={"runAsNonRoot": False}), "/podSecurityContext/runAsNonRoot"),
    (
        _with(containerSecurityContext={"allowPrivilegeEscalation": True}),
        "/containerSecurityContext/allowPrivilegeEscalation",
    ),
    (
        _with(containerSecurityContext={"capabilities": {"drop": []}}),
        "/containerSecurityContext/capabilities/drop",
    ),
    (_with(logFormat="xml"), "/logFormat"),
    (_with(networkPolicy={"llm": {"ports": [{"port": 70000}]}}), "/networkPolicy/llm/ports/0"),
]


@pytest.mark.parametrize(("values", "where"), BAD_VALUES, ids=[w for _, w in BAD_VALUES])
def test_schema_rejects(chart: Any, values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError) as info:
        chart.render(values)
    message = str(info.value)
    assert "schema" in message
    assert where in message, message


def test_schema_accepts_every_value_set(chart: Any, value_set: str) -> None:
    c = chart._chart()
    c.validate_schema(c.merge_values(chart.load_values(value_set)))


def test_schema_is_strict_at_every_object(chart: Any) -> None:
    """Every object of values.yaml that is not a free-form map is closed in the
    schema, so a misspelt key fails instead of being silently ignored."""
    schema = json.loads((chart.CHART / "values.schema.json").read_text())
    values = yaml.safe_load((chart.CHART / "values.yaml").read_text())
    free_form = {
        "commonLabels",
        "nodeSelector",
        "tolerations",
        "affinity",
        "annotations",
        "podAnnotations",
        "podLabels",
        "labels",
        "roleConfigs",
        "requests",
        "limits",
        "global",
    }

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        if ref:
            return schema["definitions"][ref.rsplit("/", 1)[1]]
        return node

    def walk(value: Any, node: dict[str, Any], path: str) -> None:
        node = resolve(node)
        if not isinstance(value, dict) or path.rsplit(".", 1)[-1] in free_form:
            return
        if path == "roles":
            for name, role in value.items():
                walk(role, node["additionalProperties"], f"roles.{name}")
            return
        assert node.get("additionalProperties") is False, f"{path or '<root>'} is open"
        for key, child in value.items():
            assert key in node["properties"], f"{path}.{key} missing from the schema"
            walk(child, node["properties"][key], f"{path}.{key}".lstrip("."))

    walk(values, schema, "")


def _leaf_paths(values: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the documented values (helm-docs rows): scalars, lists
    and empty maps; role entries as `roles.<name>.<field>`."""
    if (
        isinstance(values, dict)
        and values
        and prefix.rsplit(".", 1)[-1] not in {"requests", "limits", "resources"}
    ):
        out = []
        for key, child in values.items():
            out += _leaf_paths(child, f"{prefix}.{key}" if prefix else key)
        return out
    return [prefix]


def test_every_value_has_a_helm_docs_comment(chart: Any) -> None:
    lines = (chart.CHART / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, str]] = []
    documented: set[str] = set()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z0-9_.-]+):", line)
        if not m or line.lstrip().startswith("#"):
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([p for _, p in stack] + [m.group(2)])
        stack.append((indent, m.group(2)))
        j = i - 1
        while (
            j >= 0 and lines[j].strip().startswith("#") and not lines[j].strip().startswith("# --")
        ):
            j -= 1  # continuation lines of a multi-line description
        if j >= 0 and lines[j].strip().startswith("# --"):
            documented.add(path)
    values = yaml.safe_load("\n".join(lines))
    leaves = _leaf_paths(values)
    missing = [p for p in leaves if p not in documented]
    assert not missing, f"values without a `# --` comment: {missing}"


def test_readme_documents_every_value(chart: Any) -> None:
    readme = (chart.CHART / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([^`]+)` \| ([a-z]+) \|", readme, flags=re.M))
    values = yaml.safe_load((chart.CHART / "values.yaml").read_text())
    leaves = set(_leaf_paths(values))
    assert leaves - set(rows) == set(), "values missing from README.md"
    assert set(rows) - leaves == set(), "README.md documents values that do not exist"
