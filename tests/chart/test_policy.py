"""Security and operations policy over every rendered value set: the restricted
Pod Security Standard, resource limits, probes, pinned images, least-privilege
RBAC, token automount, NetworkPolicy coverage and disruption budgets."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import pytest

pytest.importorskip("helm_python")

# Volume types the restricted Pod Security Standard allows.
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_the_validator_is_strict(chart: Any) -> None:
    """Guard for test_manifests_validate_against_kubernetes: a typo must fail."""
    deployment = chart.strip(
        chart.one(chart.rendered_set("url"), "Deployment", "team-agentos-worker")
    )
    kubernetes_validate.validate(deployment, "1.33.0", strict=True)
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.33.0", strict=True)


def test_restricted_pod_security_everywhere(chart: Any, value_set: str) -> None:
    specs = chart.pod_specs(chart.rendered_set(value_set))
    assert specs
    for name, spec in specs:
        for key in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
            assert not spec.get(key), f"{name}: {key}"
        pod_ctx = spec["securityContext"]
        assert pod_ctx["runAsNonRoot"] is True, name
        assert pod_ctx["runAsUser"] > 0, name
        assert pod_ctx["seccompProfile"]["type"] == "RuntimeDefault", name
        for volume in spec.get("volumes", []):
            types = set(volume) - {"name"}
            assert types <= RESTRICTED_VOLUME_TYPES, f"{name}: volume {volume}"
        for c in _containers(spec):
            where = f"{name}/{c['name']}"
            ctx = c["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["capabilities"]["drop"] == ["ALL"], where
            assert not ctx["capabilities"].get("add"), where
            assert not ctx.get("privileged"), where
            assert ctx.get("runAsNonRoot", pod_ctx["runAsNonRoot"]) is True, where
            assert ctx.get("runAsUser", pod_ctx["runAsUser"]) != 0, where
            assert ctx.get("seccompProfile", pod_ctx["seccompProfile"])["type"] in {
                "RuntimeDefault",
                "Localhost",
            }, where
            assert not c.get("ports") or all("hostPort" not in p for p in c["ports"]), where


def test_writable_paths_are_volumes(chart: Any, value_set: str) -> None:
    """With a read-only root, /tmp and AGENTOS_HOME (and the workspace in it) must be mounts."""
    for name, spec in chart.pod_specs(chart.rendered_set(value_set)):
        volumes = {v["name"]: v for v in spec["volumes"]}
        for c in _containers(spec):
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{name}/{c['name']}"
            assert "emptyDir" in volumes[mounts["/tmp"]]
            env = chart.env_of(c)
            for var in ("AGENTOS_HOME", "AGENTOS_WORKSPACE", "HOME"):
                if var in env:
                    path = env[var]
                    assert any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts), (
                        f"{name}: {var}={path} is not on a volume"
                    )


def test_resources_and_images(chart: Any, value_set: str) -> None:
    for name, spec in chart.pod_specs(chart.rendered_set(value_set)):
        for c in _containers(spec):
            where = f"{name}/{c['name']}"
            limits = c["resources"]["limits"]
            requests = c["resources"]["requests"]
            assert {"cpu", "memory"} <= set(limits), where
            assert {"cpu", "memory"} <= set(requests), where
            image = c["image"]
            if "@sha256:" in image:
                assert re.fullmatch(r"[^@]+@sha256:[0-9a-f]{64}", image), where
            else:
                repo, _, tag = image.rpartition(":")
                assert repo and "/" not in tag, f"{where}: {image} has no tag"
                assert tag != "latest" and tag, f"{where}: {image}"
            assert c["imagePullPolicy"] in {"IfNotPresent", "Always"}, where


def test_agent_probes(chart: Any, value_set: str) -> None:
    for d in chart.by_kind(chart.rendered_set(value_set), "Deployment"):
        (c,) = d["spec"]["template"]["spec"]["containers"]
        port = next(p for p in c["ports"] if p["name"] == "health")
        env = chart.env_of(c)
        assert env["AGENTOS_HEALTH_PORT"] == str(port["containerPort"])
        assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "health"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
        assert c["startupProbe"]["httpGet"]["path"] == "/livez"
    for d in chart.by_kind(chart.rendered_set(value_set), "StatefulSet"):
        (c,) = d["spec"]["template"]["spec"]["containers"]
        for probe in ("livenessProbe", "readinessProbe"):
            assert c[probe]["exec"]["command"][0] == "pg_isready"


def test_token_only_on_the_scaling_orchestrator(chart: Any, value_set: str) -> None:
    docs = chart.rendered_set(value_set)
    values = chart.load_values(value_set)
    scaling = values.get("autoscaling", {})
    orchestrator_scales = scaling.get("orchestrator", {}).get("enabled", True) and not (
        scaling.get("keda", {}).get("enabled", False)
    )
    scaler_role = scaling.get("orchestrator", {}).get("role", "orchestrator")
    with_token = []
    for name, spec in chart.pod_specs(docs):
        assert isinstance(spec["automountServiceAccountToken"], bool), name
        if spec["automountServiceAccountToken"]:
            with_token.append((name, spec["serviceAccountName"]))
    for sa in chart.by_kind(docs, "ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False, sa["metadata"]["name"]
    if orchestrator_scales:
        assert with_token == [(f"Deployment/team-agentos-{scaler_role}", "team-agentos-scaler")]
    else:
        assert with_token == []


def test_rbac_is_exactly_the_worker_scale(chart: Any, value_set: str) -> None:
    docs = chart.rendered_set(value_set)
    assert not chart.by_kind(docs, "ClusterRole")
    assert not chart.by_kind(docs, "ClusterRoleBinding")
    roles = chart.by_kind(docs, "Role")
    bindings = chart.by_kind(docs, "RoleBinding")
    if not roles:
        assert not bindings
        return
    target = chart.load_values(value_set).get("autoscaling", {}).get("targetRole", "worker")
    (role,) = roles
    assert role["rules"] == [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments/scale"],
            "resourceNames": [f"team-agentos-{target}"],
            "verbs": ["get", "patch", "update"],
        }
    ]
    # The named Deployment is the one rendered for the target role.
    chart.one(docs, "Deployment", f"team-agentos-{target}")
    (binding,) = bindings
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "team-agentos-scaler", "namespace": chart.NAMESPACE}
    ]
    users = [
        n for n, s in chart.pod_specs(docs) if s["serviceAccountName"] == "team-agentos-scaler"
    ]
    assert len(users) == 1 and users[0].startswith("Deployment/")


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        value = labels.get(expr["key"])
        op = expr["operator"]
        if op == "In" and value not in expr["values"]:
            return False
        if op == "NotIn" and value in expr["values"]:
            return False
        if op == "Exists" and value is None:
            return False
        if op == "DoesNotExist" and value is not None:
            return False
    return True


def _pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    if doc["kind"] == "Pod":
        return dict(doc["metadata"]["labels"])
    return dict(doc["spec"]["template"]["metadata"]["labels"])


def _egress_ports(policy: dict[str, Any]) -> set[tuple[int | str, str]]:
    return {
        (p["port"], p.get("protocol", "TCP"))
        for rule in policy["spec"].get("egress", [])
        for p in rule.get("ports", [])
    }


def test_network_policies(chart: Any, value_set: str) -> None:
    docs = chart.rendered_set(value_set)
    values = chart.load_values(value_set)
    policies = chart.by_kind(docs, "NetworkPolicy")
    agents = chart.one(docs, "NetworkPolicy", "team-agentos-agents")
    assert set(agents["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    bundled = values.get("database", {}).get("bundled", {}).get("enabled", False)

    workloads = [d for d in docs if d["kind"] in {"Deployment", "StatefulSet", "Job", "Pod"}]
    for d in workloads:
        labels = _pod_labels(d)
        applying = [p for p in policies if _selects(p["spec"]["podSelector"], labels)]
        assert applying, f"{d['kind']}/{d['metadata']['name']} is not covered"
        egress = set().union(*(_egress_ports(p) for p in applying))
        if labels["app.kubernetes.io/component"] == "postgresql":
            assert applying == [chart.one(docs, "NetworkPolicy", "team-agentos-postgresql")]
            assert applying[0]["spec"].get("egress", []) == []  # no egress at all
            continue
        assert {(53, "UDP"), (53, "TCP")} <= egress
        db_port = 5432 if bundled else values.get("database", {}).get("port", 5432)
        assert (db_port, "TCP") in egress
        llm_ports = values.get("networkPolicy", {}).get("llm", {}).get("ports")
        for port in llm_ports or [{"port": 443}]:
            assert (port["port"], port.get("protocol", "TCP")) in egress

    rules = agents["spec"]["egress"]
    db_rule = next(r for r in rules if r["ports"] == [{"port": 5432, "protocol": "TCP"}])
    if bundled:
        (peer,) = db_rule["to"]
        sts = chart.one(docs, "StatefulSet", "team-agentos-postgresql")
        assert _selects(peer["podSelector"], _pod_labels(sts))
        ingress = chart.one(docs, "NetworkPolicy", "team-agentos-postgresql")["spec"]["ingress"]
        assert ingress[0]["ports"] == [{"port": 5432, "protocol": "TCP"}]
    elif value_set == "existing-secret":
        assert db_rule["to"] == [{"podSelector": {"matchLabels": {"cnpg.io/cluster": "team-db"}}}]
    dns_rule = next(r for r in rules if {"port": 53, "protocol": "UDP"} in r["ports"])
    assert dns_rule["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    # Ingress: only the health port.
    assert agents["spec"]["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]

    # Kubernetes API egress exists exactly when the orchestrator holds a token.
    scaler_policy = [p for p in policies if p["metadata"]["name"] == "team-agentos-scaler"]
    tokens = [n for n, s in chart.pod_specs(docs) if s["automountServiceAccountToken"]]
    assert bool(scaler_policy) == bool(tokens)
    for name, spec in chart.pod_specs(docs):
        d = next(x for x in workloads if f"{x['kind']}/{x['metadata']['name']}" == name)
        covered = scaler_policy and _selects(
            scaler_policy[0]["spec"]["podSelector"], _pod_labels(d)
        )
        assert bool(covered) == spec["automountServiceAccountToken"], name


def test_network_policy_can_be_disabled(chart: Any) -> None:
    values = {**chart.load_values("url"), "networkPolicy": {"enabled": False}}
    assert not chart.by_kind(chart.render(values), "NetworkPolicy")


def test_disruption_budgets_match_roles(chart: Any, value_set: str) -> None:
    docs = chart.rendered_set(value_set)
    pdbs = {d["metadata"]["name"]: d for d in chart.by_kind(docs, "PodDisruptionBudget")}
    for d in chart.by_kind(docs, "Deployment"):
        pdb = pdbs.get(d["metadata"]["name"])
        if pdb is None:
            continue
        assert _selects(pdb["spec"]["selector"], _pod_labels(d))
        assert ("minAvailable" in pdb["spec"]) != ("maxUnavailable" in pdb["spec"])
        # A budget that can never be met would block every node drain.
        assert pdb["spec"].get("minAvailable", 0) < max(d["spec"].get("replicas", 1), 2)
    assert set(pdbs) <= {d["metadata"]["name"] for d in chart.by_kind(docs, "Deployment")}


def test_secret_references_resolve(chart: Any, value_set: str) -> None:
    """Every Secret a pod reads is rendered by the chart or declared in the values."""
    docs = chart.rendered_set(value_set)
    values = chart.load_values(value_set)
    external = {
        values.get("database", {}).get("existingSecret"),
        values.get("llm", {}).get("apiKeySecret"),
        values.get("secrets", {}).get("existingSecret"),
    } - {None, ""}
    rendered = {d["metadata"]["name"]: d for d in chart.by_kind(docs, "Secret")}
    for name, spec in chart.pod_specs(docs):
        for c in _containers(spec):
            refs = [
                e["valueFrom"]["secretKeyRef"]
                for e in c.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            ]
            for ref in refs:
                if ref["name"] in external:
                    continue
                assert ref["name"] in rendered, f"{name}: dangling secret {ref['name']}"
                assert ref["key"] in rendered[ref["name"]]["data"], f"{name}: {ref}"
            for src in c.get("envFrom", []):
                assert src["secretRef"]["name"] in external, name
    assert all(not d.get("stringData") for d in rendered.values())


def test_no_latest_anywhere_in_images(chart: Any, value_set: str) -> None:
    for name, spec in chart.pod_specs(chart.rendered_set(value_set)):
        for c in _containers(spec):
            assert not c["image"].endswith(":latest"), name
            assert ":" in c["image"] or "@" in c["image"], name
