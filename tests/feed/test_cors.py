"""CORS: the public feed reads are readable from any page; operator reads are not."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db
ORIGIN = {"HTTP_ORIGIN": "https://dashboard.example"}


@pytest.mark.parametrize("path", ["/api/milestones/latest", "/api/milestones/some-key"])
def test_public_reads_allow_any_origin_without_credentials(client, path):
    response = client.get(path, **ORIGIN)
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response


def test_a_preflight_for_a_public_read_is_answered(client):
    response = client.options("/api/milestones/latest", **ORIGIN,
                              HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "GET" in response["Access-Control-Allow-Methods"]
    assert "POST" not in response["Access-Control-Allow-Methods"]


@pytest.mark.parametrize("path", ["/api/milestones/dead-letter", "/api/orchestrator/deliveries",
                                  "/api/health"])
def test_operator_and_other_routes_send_no_cors_header(client, path):
    assert "Access-Control-Allow-Origin" not in client.get(path, **ORIGIN)
