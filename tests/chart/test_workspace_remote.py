"""The shared git remote reaches every role pod from an existing Secret."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("helm_python")


def test_every_role_gets_the_workspace_remote_from_the_secret(chart: Any) -> None:
    docs = chart.render({"database": {"url": "postgresql://a:b@db:5432/agentos"},
                   "workspaceRemoteSecret": "team-git", "workspaceRemoteSecretKey": "https-url"})
    seen = 0
    for name, spec in chart.pod_specs(docs):
        for c in spec["containers"]:
            if not c.get("args") or "agent" not in c["args"]:
                continue
            ref = chart.env_of(c)["AGENTOS_WORKSPACE_REMOTE"]["secretKeyRef"]
            assert ref == {"name": "team-git", "key": "https-url"}, name
            seen += 1
    assert seen >= 3


def test_no_remote_by_default(chart: Any) -> None:
    docs = chart.render({"database": {"url": "postgresql://a:b@db:5432/agentos"}})
    for _, spec in chart.pod_specs(docs):
        for c in spec["containers"]:
            assert "AGENTOS_WORKSPACE_REMOTE" not in chart.env_of(c)
