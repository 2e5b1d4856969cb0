"""Render and lint the chart with the real Helm SDK; validate every manifest
against the Kubernetes OpenAPI schemas; check what each value set must produce."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

helm = pytest.importorskip("helm_python")

URL_ONLY = {"database": {"url": "postgresql://agentos:pw@db:5432/agentos"}}


def test_default_values_lint_clean_but_refuse_to_install(chart: Any) -> None:
    report = helm.lint(str(chart.CHART), strict=True)
    assert report["errors"] == []
    assert all(m["severity"] < 2 for m in report["messages"]), report["messages"]
    # With no database configured the chart refuses with guidance, not broken pods.
    with pytest.raises(helm.HelmRenderError, match=r"database: set one of database\.url"):
        chart.render(None)


def test_every_value_set_lints_strictly(chart: Any, value_set: str) -> None:
    report = helm.lint(
        str(chart.CHART), chart.load_values(value_set), strict=True, namespace=chart.NAMESPACE
    )
    assert report["errors"] == [], report
    assert all(m["severity"] < 2 for m in report["messages"]), report["messages"]


def test_lint_reports_schema_violations(chart: Any) -> None:
    bad = {**URL_ONLY, "roles": {"worker": {"replicas": "two"}}}
    report = helm.lint(str(chart.CHART), bad)
    assert any("/roles/worker/replicas" in e for e in report["errors"]), report


@pytest.mark.parametrize("kube_version", ["1.27.0", "1.33.0"])
def test_manifests_validate_against_kubernetes(chart: Any, value_set: str, kube_version: str):
    docs = chart.rendered_set(value_set)
    assert docs
    for doc in docs:
        body = chart.strip(doc)
        if (doc["apiVersion"], doc["kind"]) in chart.CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(body, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['_template']} {doc['kind']}/{doc['metadata']['name']}: {exc}")


def test_no_unknown_kinds(chart: Any, value_set: str) -> None:
    known = {
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Service"),
        ("v1", "ServiceAccount"),
        ("v1", "Pod"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("batch/v1", "Job"),
        ("policy/v1", "PodDisruptionBudget"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        *chart.CUSTOM_KINDS,
    }
    for doc in chart.rendered_set(value_set):
        assert (doc["apiVersion"], doc["kind"]) in known, doc["_template"]
        assert doc["metadata"]["namespace"] == chart.NAMESPACE


def test_names_and_standard_labels(chart: Any, value_set: str) -> None:
    seen = set()
    for doc in chart.rendered_set(value_set):
        meta = doc["metadata"]
        key = (doc["kind"], meta["name"])
        assert key not in seen, f"duplicate {key}"
        seen.add(key)
        assert len(meta["name"]) <= 63
        labels = meta["labels"]
        assert labels["app.kubernetes.io/name"] == "agentos"
        assert labels["app.kubernetes.io/instance"] == chart.RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "agentos-0.1.0"
        assert labels["app.kubernetes.io/version"] == "0.1.0"


def test_issue_install_line(chart: Any) -> None:
    docs = chart.rendered_set("url")
    deployments = {d["metadata"]["name"]: d for d in chart.by_kind(docs, "Deployment")}
    assert set(deployments) == {
        "team-agentos-orchestrator",
        "team-agentos-worker",
        "team-agentos-reviewer",
    }
    assert deployments["team-agentos-orchestrator"]["spec"]["replicas"] == 1
    assert deployments["team-agentos-worker"]["spec"]["replicas"] == 2
    assert deployments["team-agentos-reviewer"]["spec"]["replicas"] == 1

    worker = deployments["team-agentos-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["image"] == "ghcr.io/agentos/agentos:0.1.0"  # tag = appVersion
    assert worker["args"] == [
        "agent",
        "run",
        "--role",
        "worker",
        "--concurrency",
        "2",
        "--name",
        "$(POD_NAME)",
    ]
    env = chart.env_of(worker)
    assert env["AGENTOS_DATABASE_URL"] == {
        "secretKeyRef": {"name": "team-agentos-database", "key": "uri"}
    }
    assert env["AGENTOS_MODEL"] == "openai/gpt-4o-mini"
    assert env["AGENTOS_LOG_FORMAT"] == "json"
    assert env["AGENTOS_HOME"] == "/var/lib/agentos"
    assert env["AGENTOS_WORKSPACE"].startswith("/var/lib/agentos/")
    assert env["AGENTOS_HEALTH_PORT"] == "8080"
    assert "AGENTOS_ROLES_DIR" not in env  # no role overrides given
    assert worker["envFrom"] == [{"secretRef": {"name": "llm-keys"}}]

    secret = chart.one(docs, "Secret", "team-agentos-database")
    import base64

    assert base64.b64decode(secret["data"]["uri"]).decode() == (
        "postgresql://agentos:s3cret@pg.example.internal:5432/agentos?sslmode=require"
    )


def test_url_mode_migration_hook_has_its_own_secret(chart: Any) -> None:
    docs = chart.rendered_set("url")
    job = chart.one(docs, "Job", "team-agentos-migrate")
    ann = job["metadata"]["annotations"]
    assert ann["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert ann["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == ["db", "migrate"]
    assert pod["restartPolicy"] == "Never"
    ref = chart.env_of(container)["AGENTOS_DATABASE_URL"]["secretKeyRef"]
    # The release Secret does not exist yet at pre-install: the Job reads a hook
    # Secret created (lower weight) in the same phase.
    hook_secret = chart.one(docs, "Secret", ref["name"])
    hook_ann = hook_secret["metadata"]["annotations"]
    assert set(hook_ann["helm.sh/hook"].split(",")) >= {"pre-install", "pre-upgrade"}
    assert int(hook_ann["helm.sh/hook-weight"]) < int(ann.get("helm.sh/hook-weight", "0"))
    sa = chart.one(docs, "ServiceAccount", pod["serviceAccountName"])
    assert sa["metadata"]["annotations"]["helm.sh/hook"] == ann["helm.sh/hook"]
    assert int(sa["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        ann["helm.sh/hook-weight"]
    )


def test_existing_secret_mode(chart: Any) -> None:
    docs = chart.rendered_set("existing-secret")
    assert not [d for d in chart.by_kind(docs, "Secret")], "the chart must not copy the secret"
    for name, spec in chart.pod_specs(docs):
        for c in spec["containers"]:
            ref = chart.env_of(c)["AGENTOS_DATABASE_URL"]["secretKeyRef"]
            assert ref == {"name": "team-db-app", "key": "uri"}, name
    job = chart.one(docs, "Job", "team-agentos-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    image = job["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "ghcr.io/agentos/agentos@sha256:" + "0123456789abcdef" * 4

    worker = chart.one(docs, "Deployment", "team-agentos-worker")
    spec = worker["spec"]["template"]["spec"]
    assert worker["spec"]["replicas"] == 3
    assert spec["nodeSelector"] == {"agentos.dev/pool": "workers"}
    assert spec["tolerations"][0]["key"] == "agentos.dev/workers"
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    container = spec["containers"][0]
    assert "--concurrency" in container["args"]
    assert container["args"][container["args"].index("--concurrency") + 1] == "4"
    # The role's env wins over the chart's, without duplicate names.
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names))
    assert chart.env_of(container)["AGENTOS_MODEL"] == "openai/gpt-4o-mini"
    assert chart.env_of(container)["GIT_AUTHOR_NAME"] == "AgentOS worker"
    orchestrator = chart.one(docs, "Deployment", "team-agentos-orchestrator")
    o_env = chart.env_of(orchestrator["spec"]["template"]["spec"]["containers"][0])
    assert o_env["AGENTOS_MODEL"] == "openai/gpt-4o"
    reviewer = chart.one(docs, "Deployment", "team-agentos-reviewer")
    r_env = chart.env_of(reviewer["spec"]["template"]["spec"]["containers"][0])
    assert r_env["AGENTOS_MODEL"] == "anthropic/claude-3-5-sonnet-latest"
    assert chart.one(docs, "PodDisruptionBudget", "team-agentos-reviewer")["spec"] == {
        "minAvailable": 1,
        "selector": {"matchLabels": reviewer["spec"]["selector"]["matchLabels"]},
    }
    for sa in chart.by_kind(docs, "ServiceAccount"):
        annotations = sa["metadata"].get("annotations", {})
        if "helm.sh/hook" in annotations:  # the migration Job needs no cloud identity
            assert "eks.amazonaws.com/role-arn" not in annotations
        else:
            assert annotations["eks.amazonaws.com/role-arn"].startswith("arn:")


def test_bundled_database(chart: Any) -> None:
    docs = chart.rendered_set("bundled")
    sts = chart.one(docs, "StatefulSet", "team-agentos-postgresql")
    assert sts["spec"]["replicas"] == 1
    container = sts["spec"]["template"]["spec"]["containers"][0]
    repo, tag = container["image"].rsplit(":", 1)
    assert repo == "docker.io/library/postgres"
    assert tag[0].isdigit() and "." in tag, "postgres must be pinned to a minor version"
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    service = chart.one(docs, "Service", "team-agentos-postgresql")
    assert service["spec"]["ports"][0]["port"] == 5432
    assert service["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]

    import base64

    secret = chart.one(docs, "Secret", "team-agentos-database")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert len(data["password"]) >= 24
    assert data["uri"] == (
        f"postgresql://agentos:{data['password']}@team-agentos-postgresql.agents.svc:5432/agentos"
    )
    env = chart.env_of(container)
    assert env["POSTGRES_PASSWORD"] == {
        "secretKeyRef": {"name": "team-agentos-database", "key": "password"}
    }
    # The database does not exist before install: first migration is post-install.
    job = chart.one(docs, "Job", "team-agentos-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
    assert job["spec"]["backoffLimit"] >= 3
    assert not [
        s
        for s in chart.by_kind(docs, "Secret")
        if "helm.sh/hook" in s["metadata"].get("annotations", {})
    ]

    worker = chart.one(docs, "Deployment", "team-agentos-worker")
    w_env = chart.env_of(worker["spec"]["template"]["spec"]["containers"][0])
    assert w_env["AGENTOS_LLM_BASE_URL"] == "http://vllm.llm.svc:8000/v1"
    assert "envFrom" not in worker["spec"]["template"]["spec"]["containers"][0]


def test_bundled_password_given_is_used(chart: Any) -> None:
    import base64

    values = {"database": {"bundled": {"enabled": True, "password": "pa ss"}}}
    with pytest.raises(helm.HelmValuesError, match="password"):
        chart.render(values)
    values["database"]["bundled"]["password"] = "p@ss/word"
    secret = chart.one(chart.render(values), "Secret", "team-agentos-database")
    uri = base64.b64decode(secret["data"]["uri"]).decode()
    assert uri.startswith("postgresql://agentos:p%40ss%2Fword@")


def test_keda_scaled_object(chart: Any) -> None:
    docs = chart.rendered_set("keda")
    worker = chart.one(docs, "Deployment", "team-agentos-worker")
    assert "replicas" not in worker["spec"], "KEDA owns the worker replica count"
    assert chart.one(docs, "Deployment", "team-agentos-orchestrator")["spec"]["replicas"] == 1

    so = chart.one(docs, "ScaledObject", "team-agentos-worker")
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    spec = so["spec"]
    assert set(spec) <= {
        "scaleTargetRef",
        "pollingInterval",
        "cooldownPeriod",
        "minReplicaCount",
        "maxReplicaCount",
        "triggers",
        "advanced",
        "fallback",
        "idleReplicaCount",
    }
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "team-agentos-worker",
        "envSourceContainerName": "agentos",
    }
    assert spec["minReplicaCount"] == 0
    assert spec["maxReplicaCount"] == 20
    assert isinstance(spec["pollingInterval"], int) and isinstance(spec["cooldownPeriod"], int)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "postgresql"
    meta = trigger["metadata"]
    # KEDA trigger metadata is map[string]string: every value must be a string.
    assert all(isinstance(v, str) for v in meta.values()), meta
    assert meta["query"] == "SELECT agentos.queue_depth('worker')"
    assert meta["targetQueryValue"] == "3"
    assert meta["activationTargetQueryValue"] == "0"
    # connectionFromEnv names an env var of the target container.
    container = next(
        c for c in worker["spec"]["template"]["spec"]["containers"] if c["name"] == "agentos"
    )
    assert meta["connectionFromEnv"] in chart.env_of(container)

    # KEDA scales: the orchestrator gets neither RBAC nor a token.
    assert not chart.by_kind(docs, "Role") and not chart.by_kind(docs, "RoleBinding")
    for name, spec in chart.pod_specs(docs):
        assert spec["automountServiceAccountToken"] is False, name


def test_keda_target_defaults_to_concurrency_and_custom_query(chart: Any) -> None:
    values = copy.deepcopy(chart.load_values("keda"))
    values["autoscaling"]["keda"]["targetQueryValue"] = None
    values["autoscaling"]["keda"]["query"] = "SELECT agentos.queue_depth('worker') + 1"
    so = chart.one(chart.render(values), "ScaledObject", "team-agentos-worker")
    meta = so["spec"]["triggers"][0]["metadata"]
    assert meta["targetQueryValue"] == "2"  # worker concurrency
    assert meta["query"] == "SELECT agentos.queue_depth('worker') + 1"


def test_keda_with_bundled_database_admits_the_operator(chart: Any) -> None:
    docs = chart.rendered_set("keda-bundled")
    policy = chart.one(docs, "NetworkPolicy", "team-agentos-postgresql")
    peers = policy["spec"]["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}} in peers


def test_both_scalers_at_once_is_refused(chart: Any) -> None:
    values = {**URL_ONLY, "autoscaling": {"keda": {"enabled": True}}}
    with pytest.raises(helm.HelmRenderError, match="mutually exclusive"):
        chart.render(values)


def test_database_modes_are_exclusive(chart: Any) -> None:
    values = {"database": {"url": "postgresql://a@b/c", "existingSecret": "x"}}
    with pytest.raises(helm.HelmRenderError, match="mutually exclusive"):
        chart.render(values)


def test_scaling_target_must_be_a_role(chart: Any) -> None:
    values = {**URL_ONLY, "autoscaling": {"targetRole": "builder"}}
    with pytest.raises(helm.HelmRenderError, match='"builder" is not an enabled entry'):
        chart.render(values)
    values = {**URL_ONLY, "roles": {"worker": {"enabled": False}}}
    with pytest.raises(helm.HelmRenderError, match='"worker" is not an enabled entry'):
        chart.render(values)
    values["autoscaling"] = {"orchestrator": {"enabled": False}}
    names = [d["metadata"]["name"] for d in chart.by_kind(chart.render(values), "Deployment")]
    assert names == ["team-agentos-orchestrator", "team-agentos-reviewer"]


def test_three_custom_roles(chart: Any) -> None:
    docs = chart.rendered_set("custom-roles")
    deployments = {d["metadata"]["name"]: d for d in chart.by_kind(docs, "Deployment")}
    assert set(deployments) == {"team-agentos-planner", "team-agentos-coder", "team-agentos-critic"}
    cm = chart.one(docs, "ConfigMap", "team-agentos-roles")
    assert set(cm["data"]) == {"planner.yaml", "coder.yaml", "critic.yaml"}
    assert cm["data"]["coder.yaml"].startswith("name: coder\n")
    for name, d in deployments.items():
        role = name.removeprefix("team-agentos-")
        spec = d["spec"]["template"]["spec"]
        container = spec["containers"][0]
        assert container["args"][:4] == ["agent", "run", "--role", role]
        assert chart.env_of(container)["AGENTOS_ROLES_DIR"] == "/etc/agentos/roles"
        mount = next(m for m in container["volumeMounts"] if m["name"] == "roles")
        assert mount == {"name": "roles", "mountPath": "/etc/agentos/roles", "readOnly": True}
        volume = next(v for v in spec["volumes"] if v["name"] == "roles")
        assert volume["configMap"]["name"] == "team-agentos-roles"
        assert "checksum/roles" in d["spec"]["template"]["metadata"]["annotations"]
    coder = deployments["team-agentos-coder"]["spec"]["template"]["spec"]["containers"][0]
    assert coder["resources"]["limits"] == {"cpu": "4", "memory": "4Gi"}

    planner = deployments["team-agentos-planner"]["spec"]["template"]["spec"]
    assert planner["automountServiceAccountToken"] is True
    env = chart.env_of(planner["containers"][0])
    assert env["AGENTOS_SCALER_DEPLOYMENT"] == "team-agentos-coder"
    assert env["AGENTOS_SCALER_NAMESPACE"] == chart.NAMESPACE
    assert env["AGENTOS_SCALER_MIN_REPLICAS"] == "0"
    assert env["AGENTOS_SCALER_MAX_REPLICAS"] == "6"
    assert env["AGENTOS_SCALER_TASKS_PER_WORKER"] == "3"  # coder concurrency
    role = chart.one(docs, "Role", "team-agentos-scaler")
    assert role["rules"][0]["resourceNames"] == ["team-agentos-coder"]
    pdbs = {d["metadata"]["name"] for d in chart.by_kind(docs, "PodDisruptionBudget")}
    assert pdbs == {"team-agentos-planner", "team-agentos-coder"}  # critic opted out


def test_role_configs_change_rolls_the_pods(chart: Any) -> None:
    base = {**URL_ONLY, "roleConfigs": {"worker.yaml": "name: worker\n"}}
    changed = {**URL_ONLY, "roleConfigs": {"worker.yaml": "name: worker\nmax_iterations: 9\n"}}

    def checksum(values: dict[str, Any]) -> str:
        d = chart.one(chart.render(values), "Deployment", "team-agentos-worker")
        return str(d["spec"]["template"]["metadata"]["annotations"]["checksum/roles"])

    assert checksum(base) != checksum(changed)


def test_notes_cheat_sheet(chart: Any) -> None:
    text = chart.notes(chart.load_values("url"))
    orch = "deploy/team-agentos-orchestrator"
    assert f"kubectl -n agents exec {orch} -- agentos log --follow" in text
    assert f"kubectl -n agents exec -it {orch} -- agentos tui" in text
    assert f"kubectl -n agents exec -it {orch} -- agentos db psql" in text
    assert "helm test team" in text
    assert "WARNING" not in text
    assert "WARNING: llm.apiKeySecret is empty" in chart.notes(URL_ONLY)


def test_helm_test_pod_checks_the_schema(chart: Any, value_set: str) -> None:
    docs = chart.rendered_set(value_set)
    pod = chart.one(docs, "Pod", "team-agentos-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    (container,) = pod["spec"]["containers"]
    assert container["args"] == ["db", "status", "--json"]
    assert "AGENTOS_DATABASE_URL" in chart.env_of(container)


def test_migrations_can_be_disabled(chart: Any) -> None:
    docs = chart.render({**URL_ONLY, "migrations": {"enabled": False}})
    assert not chart.by_kind(docs, "Job")
    assert not [
        d
        for d in docs
        if "helm.sh/hook" in d["metadata"].get("annotations", {}) and d["kind"] != "Pod"
    ]


def test_issue_install_line_through_set_flags(chart: Any) -> None:
    """The same values as `--set` flags, parsed by Helm's own strvals parser."""
    flags = [
        "database.url=postgresql://agentos:pw@db:5432/agentos",
        "llm.model=openai/gpt-4o-mini",
        "llm.apiKeySecret=llm-keys",
        "roles.worker.replicas=3",
        r"networkPolicy.database.to[0].podSelector.matchLabels.cnpg\.io/cluster=team-db",
    ]
    # One --set per flag: later flags merge into earlier ones, as helm does.
    values: dict[str, Any] = helm.parse_set_string(",".join(flags[:3]))
    assert values["llm"] == {"model": "openai/gpt-4o-mini", "apiKeySecret": "llm-keys"}
    for flag in flags[3:]:
        parsed = helm.parse_set_string(flag)
        values.setdefault(next(iter(parsed)), {}).update(next(iter(parsed.values())))
    docs = chart.render(values)
    worker = chart.one(docs, "Deployment", "team-agentos-worker")
    assert worker["spec"]["template"]["spec"]["containers"][0]["envFrom"] == [
        {"secretRef": {"name": "llm-keys"}}
    ]
    assert chart.one(docs, "Deployment", "team-agentos-worker")["spec"]["replicas"] == 3
    policy = chart.one(docs, "NetworkPolicy", "team-agentos-agents")
    assert {"podSelector": {"matchLabels": {"cnpg.io/cluster": "team-db"}}} in policy["spec"][
        "egress"
    ][1]["to"]


def test_notes_exec_into_a_deployed_role(chart: Any) -> None:
    text = chart.notes(chart.load_values("custom-roles"))
    assert "exec -it deploy/team-agentos-planner -- agentos tui" in text
    assert "team-agentos-orchestrator" not in text


def test_long_names_stay_dns_labels_and_rbac_follows(chart: Any) -> None:
    long_role = "r" * 30
    values = {
        **URL_ONLY,
        "fullnameOverride": "f" * 40,
        "commonLabels": {"team": "platform"},
        "roles": {"worker": None, long_role: {"replicas": 1}},
        "autoscaling": {"targetRole": long_role},
    }
    docs = chart.render(values)
    for doc in docs:
        assert len(doc["metadata"]["name"]) <= 63
        assert not doc["metadata"]["name"].endswith("-")
        assert doc["metadata"]["labels"]["team"] == "platform"
    (role,) = chart.by_kind(docs, "Role")
    target = [
        d
        for d in chart.by_kind(docs, "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == long_role
    ]
    assert [d["metadata"]["name"] for d in target] == role["rules"][0]["resourceNames"]


def test_the_secrets_key_comes_from_a_kubernetes_secret(chart: Any) -> None:
    """Issue 10: every agent pod gets AGENTOS_SECRET_KEY from a Secret: the chart's own
    (generated, kept on upgrade and on uninstall) or the operator's; never in values."""
    import base64

    from agentos.kernel.secrets import SecretKey, _parse_key

    docs = chart.render({"database": {"url": "postgresql://a:b@db:5432/agentos"}})
    secret = chart.one(docs, "Secret", "team-agentos-secret-key")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    key = base64.b64decode(secret["data"]["key"]).decode()
    assert isinstance(_parse_key(key, "chart"), SecretKey)  # 32 random bytes, base64
    deployments = chart.by_kind(docs, "Deployment")
    assert deployments
    for d in deployments:
        env = chart.env_of(d["spec"]["template"]["spec"]["containers"][0])
        assert env["AGENTOS_SECRET_KEY"] == {
            "secretKeyRef": {"name": "team-agentos-secret-key", "key": "key"}
        }
    job = chart.one(docs, "Job", "team-agentos-migrate")
    assert "AGENTOS_SECRET_KEY" not in chart.env_of(
        job["spec"]["template"]["spec"]["containers"][0]
    )

    given = "A" * 43 + "="
    docs = chart.render({"database": {"url": "postgresql://a:b@db:5432/agentos"},
                         "secrets": {"key": given}})  # fmt: skip
    secret = chart.one(docs, "Secret", "team-agentos-secret-key")
    assert base64.b64decode(secret["data"]["key"]).decode() == given

    docs = chart.rendered_set("existing-secret")
    for d in chart.by_kind(list(docs), "Deployment"):
        env = chart.env_of(d["spec"]["template"]["spec"]["containers"][0])
        assert env["AGENTOS_SECRET_KEY"] == {
            "secretKeyRef": {"name": "team-secret-key", "key": "aes-key"}
        }, d["metadata"]["name"]
        assert "AGENTOS_SECRET_KEY_PREVIOUS" not in env

    # a rotation rolling out: the previous key from the operator's Secret, beside the new
    docs = chart.render({"database": {"url": "postgresql://a:b@db:5432/agentos"},
                         "secrets": {"previousKeySecret": "key-before", "previousKeySecretKey": "k"}})  # fmt: skip
    deployments = chart.by_kind(docs, "Deployment")
    assert deployments
    for d in deployments:
        env = chart.env_of(d["spec"]["template"]["spec"]["containers"][0])
        assert env["AGENTOS_SECRET_KEY_PREVIOUS"] == {
            "secretKeyRef": {"name": "key-before", "key": "k"}
        }
        assert env["AGENTOS_SECRET_KEY"] == {
            "secretKeyRef": {"name": "team-agentos-secret-key", "key": "key"}
        }


def test_a_malformed_secrets_key_is_refused_by_the_schema(chart: Any) -> None:
    with pytest.raises(Exception, match="secrets"):
        chart.render({"database": {"url": "postgresql://a:b@db:5432/agentos"},
                      "secrets": {"key": "short"}})  # fmt: skip
