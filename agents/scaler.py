"""Orchestrator-driven worker scaling through the Kubernetes API.

The leading orchestrator measures the worker queue (ready tasks plus tasks being
worked on) and sets the worker Deployment's replica count through the ``scale``
subresource. The Helm chart grants exactly that: ``get``/``patch``/``update`` on
``deployments/scale`` of the one worker Deployment (see charts/agentos).

Outside a cluster :meth:`WorkerScaler.from_environment` returns ``None`` and the
caller simply does not scale. API failures are logged and reported as ``None``;
they never raise, so a flaky API server cannot take the orchestrator down.

Everything here is synchronous and thread-safe: async callers run
:meth:`WorkerScaler.reconcile` with ``asyncio.to_thread``.

Environment read by :meth:`WorkerScaler.from_environment` (the chart sets them on
the orchestrator pods):

``AGENTOS_SCALER_NAMESPACE``   namespace (else ``POD_NAMESPACE``, else the
                               service account's namespace file)
``AGENTOS_SCALER_DEPLOYMENT``  name of the worker Deployment (required)
``AGENTOS_SCALER_MIN_REPLICAS`` / ``AGENTOS_SCALER_MAX_REPLICAS``  bounds (1 / 10)
``AGENTOS_SCALER_TASKS_PER_WORKER``  tasks one worker pod takes at once (1)
``AGENTOS_SCALER_SCALE_DOWN_DELAY``  seconds a lower target must hold before
                               scaling down (0)
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import kubernetes

__all__ = ["WorkerScaler"]

log = logging.getLogger(__name__)

_SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
_FIELD_MANAGER = "agentos-orchestrator"

_not_in_cluster_logged = False
_not_in_cluster_lock = threading.Lock()


def _log_not_in_cluster(reason: str) -> None:
    """Log, once per process, that scaling is disabled."""
    global _not_in_cluster_logged
    with _not_in_cluster_lock:
        if _not_in_cluster_logged:
            return
        _not_in_cluster_logged = True
    log.info("not running in a cluster; worker scaling disabled (%s)", reason)


class WorkerScaler:
    """Sets the worker Deployment's replicas from the queue depth.

    ``desired_replicas`` is pure; ``reconcile`` talks to the API server (only when
    this process leads) and only writes when the replica count must change.
    """

    def __init__(
        self,
        namespace: str,
        deployment: str,
        min_replicas: int,
        max_replicas: int,
        tasks_per_worker: int,
        api_client: kubernetes.client.ApiClient | None = None,
        *,
        scale_down_delay: float = 0.0,
        request_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not namespace or not deployment:
            raise ValueError("namespace and deployment must be non-empty")
        if min_replicas < 0:
            raise ValueError(f"min_replicas must be >= 0, got {min_replicas}")
        if max_replicas < max(min_replicas, 1):
            raise ValueError(f"max_replicas must be >= max(min_replicas, 1), got {max_replicas}")
        if tasks_per_worker < 1:
            raise ValueError(f"tasks_per_worker must be >= 1, got {tasks_per_worker}")
        if scale_down_delay < 0:
            raise ValueError(f"scale_down_delay must be >= 0, got {scale_down_delay}")
        self.namespace = namespace
        self.deployment = deployment
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.tasks_per_worker = tasks_per_worker
        self.scale_down_delay = scale_down_delay
        self.request_timeout = request_timeout
        self._clock = clock
        self._apps = kubernetes.client.AppsV1Api(api_client)
        self._lock = threading.Lock()
        # (time, desired) recommendations inside the scale-down window.
        self._recent: deque[tuple[float, int]] = deque()

    def __repr__(self) -> str:
        return (
            f"WorkerScaler(namespace={self.namespace!r}, deployment={self.deployment!r}, "
            f"min={self.min_replicas}, max={self.max_replicas}, "
            f"tasks_per_worker={self.tasks_per_worker})"
        )

    @classmethod
    def from_environment(
        cls,
        namespace: str | None = None,
        deployment: str | None = None,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
        tasks_per_worker: int | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> WorkerScaler | None:
        """Build a scaler from the in-cluster configuration, or return ``None``.

        Arguments left ``None`` come from the ``AGENTOS_SCALER_*`` environment
        (module docstring). Returns ``None`` (logging once) when not running in a
        cluster or when the in-cluster configuration cannot be loaded, and also
        (logged as a warning) when the worker Deployment is not configured or a
        bound is invalid.
        """
        env = os.environ if environ is None else environ
        if not env.get("KUBERNETES_SERVICE_HOST"):
            _log_not_in_cluster("KUBERNETES_SERVICE_HOST is not set")
            return None
        try:
            configuration = kubernetes.client.Configuration()
            kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except Exception as exc:  # ConfigException, OSError: any reason means "not here"
            _log_not_in_cluster(f"in-cluster configuration failed: {exc}")
            return None

        try:
            namespace = (
                namespace
                or env.get("AGENTOS_SCALER_NAMESPACE")
                or env.get("POD_NAMESPACE")
                or _read_service_account_namespace()
            )
            deployment = deployment or env.get("AGENTOS_SCALER_DEPLOYMENT", "")
            if not namespace or not deployment:
                log.warning(
                    "worker scaling disabled: AGENTOS_SCALER_DEPLOYMENT and the namespace "
                    "must be set"
                )
                return None
            if min_replicas is None:
                min_replicas = int(env.get("AGENTOS_SCALER_MIN_REPLICAS", "1"))
            if max_replicas is None:
                max_replicas = int(env.get("AGENTOS_SCALER_MAX_REPLICAS", "10"))
            if tasks_per_worker is None:
                tasks_per_worker = int(env.get("AGENTOS_SCALER_TASKS_PER_WORKER", "1"))
            kwargs.setdefault(
                "scale_down_delay", float(env.get("AGENTOS_SCALER_SCALE_DOWN_DELAY", "0"))
            )
            return cls(
                namespace,
                deployment,
                min_replicas,
                max_replicas,
                tasks_per_worker,
                kubernetes.client.ApiClient(configuration),
                **kwargs,
            )
        except ValueError as exc:
            log.warning("worker scaling disabled: invalid scaler configuration: %s", exc)
            return None

    def desired_replicas(self, queue_depth: int, busy: int) -> int:
        """Workers needed for ``queue_depth`` ready and ``busy`` running tasks.

        ``ceil((queue_depth + busy) / tasks_per_worker)`` clamped to
        ``[min_replicas, max_replicas]``; negative inputs count as zero.
        """
        work = max(queue_depth, 0) + max(busy, 0)
        wanted = math.ceil(work / self.tasks_per_worker)
        return max(self.min_replicas, min(self.max_replicas, wanted))

    def _stabilized(self, desired: int, now: float) -> int:
        """Scale up at once; scale down only to the highest target of the window."""
        if self.scale_down_delay <= 0:
            return desired
        self._recent.append((now, desired))
        while self._recent and self._recent[0][0] < now - self.scale_down_delay:
            self._recent.popleft()
        return max(d for _, d in self._recent)

    def reconcile(self, queue_depth: int, busy: int, is_leader: bool) -> int | None:
        """Make the worker Deployment's replicas match the queue.

        Only the leader acts. Returns the replica count it set, or ``None`` when
        nothing was written (not the leader, already right, or an API error,
        which is logged and never raised).
        """
        if not is_leader:
            with self._lock:
                # A follower's old recommendations must not steer it once it leads.
                self._recent.clear()
            return None
        with self._lock:
            target = self._stabilized(self.desired_replicas(queue_depth, busy), self._clock())
            try:
                scale = self._apps.read_namespaced_deployment_scale(
                    self.deployment, self.namespace, _request_timeout=self.request_timeout
                )
                current = scale.spec.replicas if scale.spec is not None else None
                current = current or 0  # the API omits replicas when it is 0
                if current == target:
                    return None
                # JSON Patch "add" sets the member whether or not it is present.
                self._apps.patch_namespaced_deployment_scale(
                    self.deployment,
                    self.namespace,
                    [{"op": "add", "path": "/spec/replicas", "value": target}],
                    field_manager=_FIELD_MANAGER,
                    _request_timeout=self.request_timeout,
                )
            except Exception as exc:  # ApiException, urllib3 errors, timeouts
                log.warning(
                    "scaling deployment %s/%s failed: %s",
                    self.namespace,
                    self.deployment,
                    _describe(exc),
                )
                return None
        log.info(
            "scaled deployment %s/%s from %d to %d replicas (queue_depth=%d busy=%d)",
            self.namespace,
            self.deployment,
            current,
            target,
            queue_depth,
            busy,
        )
        return target


def _read_service_account_namespace() -> str:
    try:
        with open(_SERVICE_ACCOUNT_NAMESPACE, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _describe(exc: BaseException) -> str:
    """One line for the log: status and reason for API errors, else the message."""
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    if status is not None:
        return f"HTTP {status} {reason or ''}".strip()
    return f"{type(exc).__name__}: {exc}"
