from __future__ import annotations

from pacsync.domain.access import Role

from .conftest import Api


def test_health_and_metrics_answer_where_probes_and_prometheus_look(api: Api) -> None:
    health = api.client.get("/health")
    assert health.status_code == 200
    assert health.json() == api.get("/health", as_=None).json()
    assert api.client.get("/metrics").status_code == 401  # metrics need a viewer
    token = api.tokens[Role.VIEWER]
    metrics = api.client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert metrics.status_code == 200
    assert "pacsync_" in metrics.text
    paths = api.client.get("/api/v1/openapi.json").json()["paths"]
    assert "/health" not in paths  # documented once, under /api/v1
