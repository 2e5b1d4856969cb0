"""agents/scaler.py against a fake Kubernetes API server on 127.0.0.1.

The fake answers exactly the two paths the scaler may use (GET and PATCH of
/apis/apps/v1/namespaces/NS/deployments/NAME/scale, as the chart's Role allows)
and records every request, so the tests assert what goes over the wire."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes
import pytest

NS = "agents"
DEPLOYMENT = "team-agentos-worker"
SCALE_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments/{DEPLOYMENT}/scale"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str | None
    body: Any


@dataclass
class FakeApi:
    replicas: int = 2
    get_status: int = 200
    patch_status: int = 200
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def scale(self) -> dict[str, Any]:
        spec = {"replicas": self.replicas} if self.replicas else {}  # omitempty, like the API
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {"name": DEPLOYMENT, "namespace": NS, "resourceVersion": "7"},
            "spec": spec,
            "status": {"replicas": self.replicas, "selector": "app.kubernetes.io/component=worker"},
        }


def _status(code: int, reason: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "code": code,
        "message": f"fake {reason}",
    }


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _reply(self, code: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> Request:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            req = Request(
                self.command,
                url.path,
                parse_qs(url.query),
                self.headers.get("Content-Type"),
                json.loads(raw) if raw else None,
            )
            with api.lock:
                api.requests.append(req)
            return req

        def do_GET(self) -> None:
            req = self._record()
            if req.path != SCALE_PATH:
                self._reply(404, _status(404, "NotFound"))
            elif api.get_status != 200:
                self._reply(api.get_status, _status(api.get_status, "Forbidden"))
            else:
                self._reply(200, api.scale())

        def do_PATCH(self) -> None:
            req = self._record()
            if req.path != SCALE_PATH:
                self._reply(404, _status(404, "NotFound"))
                return
            if api.patch_status != 200:
                self._reply(api.patch_status, _status(api.patch_status, "InternalError"))
                return
            assert req.content_type == "application/json-patch+json"
            for op in req.body:
                assert op["op"] in {"add", "replace"} and op["path"] == "/spec/replicas"
                api.replicas = int(op["value"])
            self._reply(200, api.scale())

    return Handler


@pytest.fixture
def fake_api() -> Iterator[tuple[FakeApi, kubernetes.client.ApiClient]]:
    api = FakeApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    config = kubernetes.client.Configuration()
    config.host = f"http://127.0.0.1:{server.server_address[1]}"
    config.retries = 0
    client = kubernetes.client.ApiClient(config)
    try:
        yield api, client
    finally:
        server.shutdown()
        server.server_close()
        client.close()
        thread.join(timeout=5)


def _scaler(scaler_module: Any, client: Any, **kw: Any) -> Any:
    args = {"min_replicas": 1, "max_replicas": 10, "tasks_per_worker": 2} | kw
    return scaler_module.WorkerScaler(NS, DEPLOYMENT, api_client=client, **args)


@pytest.mark.parametrize(
    ("queue", "busy", "expected"),
    [
        (0, 0, 1),  # never below min
        (1, 0, 1),
        (2, 0, 1),
        (3, 0, 2),  # ceil(3 / 2)
        (3, 4, 4),  # busy tasks count: ceil(7 / 2)
        (19, 0, 10),
        (1000, 50, 10),  # never above max
        (-5, -1, 1),  # nonsense input counts as zero
    ],
)
def test_desired_replicas(scaler_module: Any, queue: int, busy: int, expected: int) -> None:
    s = scaler_module.WorkerScaler(NS, DEPLOYMENT, 1, 10, 2)
    assert s.desired_replicas(queue, busy) == expected


def test_desired_replicas_can_reach_zero(scaler_module: Any) -> None:
    s = scaler_module.WorkerScaler(NS, DEPLOYMENT, 0, 3, 1)
    assert s.desired_replicas(0, 0) == 0
    assert s.desired_replicas(0, 1) == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"min_replicas": -1},
        {"max_replicas": 0, "min_replicas": 0},
        {"min_replicas": 5, "max_replicas": 4},
        {"tasks_per_worker": 0},
    ],
)
def test_invalid_bounds_are_refused(scaler_module: Any, bad: dict[str, int]) -> None:
    args = {"min_replicas": 1, "max_replicas": 10, "tasks_per_worker": 2} | bad
    with pytest.raises(ValueError):
        scaler_module.WorkerScaler(NS, DEPLOYMENT, **args)


def test_follower_makes_no_request(scaler_module: Any, fake_api: Any) -> None:
    api, client = fake_api
    s = _scaler(scaler_module, client)
    assert s.reconcile(queue_depth=40, busy=0, is_leader=False) is None
    assert api.requests == []


def test_leader_scales_up_with_one_read_and_one_patch(scaler_module: Any, fake_api: Any) -> None:
    api, client = fake_api
    api.replicas = 2
    s = _scaler(scaler_module, client)
    assert s.reconcile(queue_depth=7, busy=2, is_leader=True) == 5
    assert [(r.method, r.path) for r in api.requests] == [
        ("GET", SCALE_PATH),
        ("PATCH", SCALE_PATH),
    ]
    patch = api.requests[1]
    assert patch.body == [{"op": "add", "path": "/spec/replicas", "value": 5}]
    assert patch.query.get("fieldManager") == ["agentos-orchestrator"]
    assert api.replicas == 5


def test_no_patch_when_already_right(scaler_module: Any, fake_api: Any) -> None:
    api, client = fake_api
    api.replicas = 3
    s = _scaler(scaler_module, client)
    assert s.reconcile(queue_depth=5, busy=0, is_leader=True) is None
    assert [r.method for r in api.requests] == ["GET"]


def test_bounds_on_the_wire(scaler_module: Any, fake_api: Any) -> None:
    api, client = fake_api
    s = _scaler(scaler_module, client, min_replicas=1, max_replicas=4)
    api.replicas = 2
    assert s.reconcile(queue_depth=500, busy=9, is_leader=True) == 4
    assert s.reconcile(queue_depth=0, busy=0, is_leader=True) == 1
    patches = [r.body[0]["value"] for r in api.requests if r.method == "PATCH"]
    assert patches == [4, 1]


def test_scale_from_and_to_zero(scaler_module: Any, fake_api: Any) -> None:
    api, client = fake_api
    s = _scaler(scaler_module, client, min_replicas=0, max_replicas=5, tasks_per_worker=1)
    api.replicas = 0  # the API omits spec.replicas when it is 0
    assert s.reconcile(queue_depth=3, busy=0, is_leader=True) == 3
    assert s.reconcile(queue_depth=0, busy=0, is_leader=True) == 0
    assert api.replicas == 0
    assert s.reconcile(queue_depth=0, busy=0, is_leader=True) is None


def test_api_errors_are_logged_not_raised(
    scaler_module: Any, fake_api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    api, client = fake_api
    s = _scaler(scaler_module, client)
    caplog.set_level(logging.WARNING)
    api.get_status = 403
    assert s.reconcile(queue_depth=9, busy=0, is_leader=True) is None
    assert "HTTP 403" in caplog.text
    api.get_status = 200
    api.patch_status = 500
    assert s.reconcile(queue_depth=9, busy=0, is_leader=True) is None
    assert "HTTP 500" in caplog.text
    assert api.replicas == 2


def test_unreachable_api_server_is_not_fatal(
    scaler_module: Any, caplog: pytest.LogCaptureFixture
) -> None:
    config = kubernetes.client.Configuration()
    config.host = "http://127.0.0.1:9"  # discard port: nothing listens
    config.retries = 0
    with kubernetes.client.ApiClient(config) as client:
        s = _scaler(scaler_module, client, request_timeout=2.0)
        caplog.set_level(logging.WARNING)
        assert s.reconcile(queue_depth=9, busy=0, is_leader=True) is None
    assert "scaling deployment agents/team-agentos-worker failed" in caplog.text


def test_scale_down_waits_for_the_delay(scaler_module: Any, fake_api: Any) -> None:
    api, client = fake_api
    now = [0.0]
    s = _scaler(scaler_module, client, scale_down_delay=300, clock=lambda: now[0])
    api.replicas = 1
    assert s.reconcile(queue_depth=10, busy=0, is_leader=True) == 5  # up at once
    now[0] = 60
    assert s.reconcile(queue_depth=0, busy=2, is_leader=True) is None  # still 5 in window
    now[0] = 301
    assert s.reconcile(queue_depth=0, busy=2, is_leader=True) == 1  # the 5 aged out
    assert api.replicas == 1
    assert s.reconcile(queue_depth=9, busy=0, is_leader=True) == 5


async def test_runs_in_worker_threads(scaler_module: Any, fake_api: Any) -> None:
    """Callers run reconcile with asyncio.to_thread; concurrent calls stay consistent."""
    api, client = fake_api
    api.replicas = 1
    s = _scaler(scaler_module, client, max_replicas=6)
    results = await asyncio.gather(*(asyncio.to_thread(s.reconcile, 11, 0, True) for _ in range(8)))
    assert sorted(results, key=lambda r: r is None) == [6] + [None] * 7
    assert [r.method for r in api.requests].count("PATCH") == 1
    assert api.replicas == 6


def test_from_environment_outside_a_cluster(
    scaler_module: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(scaler_module, "_not_in_cluster_logged", False)
    caplog.set_level(logging.INFO, logger=scaler_module.__name__)
    env = {"AGENTOS_SCALER_DEPLOYMENT": DEPLOYMENT}
    assert scaler_module.WorkerScaler.from_environment(environ=env) is None
    assert scaler_module.WorkerScaler.from_environment(environ=env) is None
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert messages[0].startswith("not running in a cluster; worker scaling disabled")


def test_from_environment_when_in_cluster_config_fails(
    scaler_module: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(scaler_module, "_not_in_cluster_logged", False)
    incluster = kubernetes.config.incluster_config
    monkeypatch.setattr(incluster, "SERVICE_TOKEN_FILENAME", str(tmp_path / "missing-token"))
    monkeypatch.setattr(incluster, "SERVICE_CERT_FILENAME", str(tmp_path / "missing-ca"))
    caplog.set_level(logging.INFO, logger=scaler_module.__name__)
    env = {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": "6443",
        "AGENTOS_SCALER_DEPLOYMENT": DEPLOYMENT,
    }
    assert scaler_module.WorkerScaler.from_environment(environ=env) is None
    assert "worker scaling disabled" in caplog.text


def test_from_environment_in_a_cluster(
    scaler_module: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """With the service account files present it builds a scaler from the chart's env."""
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("fake-token")
    ca.write_text("-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n")
    incluster = kubernetes.config.incluster_config
    monkeypatch.setattr(incluster, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster, "SERVICE_CERT_FILENAME", str(ca))
    # load_incluster_config reads host and port from the process environment.
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    env = {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "AGENTOS_SCALER_NAMESPACE": NS,
        "AGENTOS_SCALER_DEPLOYMENT": DEPLOYMENT,
        "AGENTOS_SCALER_MIN_REPLICAS": "0",
        "AGENTOS_SCALER_MAX_REPLICAS": "6",
        "AGENTOS_SCALER_TASKS_PER_WORKER": "3",
        "AGENTOS_SCALER_SCALE_DOWN_DELAY": "300",
    }
    s = scaler_module.WorkerScaler.from_environment(environ=env)
    assert s is not None
    assert (s.namespace, s.deployment) == (NS, DEPLOYMENT)
    assert (s.min_replicas, s.max_replicas, s.tasks_per_worker) == (0, 6, 3)
    assert s.scale_down_delay == 300
    assert s.desired_replicas(7, 0) == 3
    # Explicit arguments win over the environment; bad bounds disable, never raise.
    assert (
        scaler_module.WorkerScaler.from_environment(max_replicas=2, environ=env).max_replicas == 2
    )
    assert (
        scaler_module.WorkerScaler.from_environment(
            environ={**env, "AGENTOS_SCALER_MAX_REPLICAS": "lots"}
        )
        is None
    )
    assert (
        scaler_module.WorkerScaler.from_environment(
            environ={k: v for k, v in env.items() if k != "AGENTOS_SCALER_DEPLOYMENT"}
        )
        is None
    )


def test_chart_env_names_match_the_scaler(chart: Any, scaler_module: Any) -> None:
    """The orchestrator's AGENTOS_SCALER_* variables are the ones the scaler reads."""
    import inspect

    source = inspect.getsource(scaler_module)
    docs = chart.rendered_set("url")
    orchestrator = chart.one(docs, "Deployment", "team-agentos-orchestrator")
    env = chart.env_of(orchestrator["spec"]["template"]["spec"]["containers"][0])
    scaler_vars = {k for k in env if k.startswith("AGENTOS_SCALER_")}
    read = {v for v in scaler_vars if f'"{v}"' in source}
    assert read == scaler_vars - {"AGENTOS_SCALER_ROLE"}  # the role is for the queue query
    assert "AGENTOS_SCALER_DEPLOYMENT" in read
