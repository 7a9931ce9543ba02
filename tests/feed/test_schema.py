"""The OpenAPI document describes the feed side; the docs UI is served without internet."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_schema_lists_the_feed_endpoints(schema):
    assert {"/internal/milestones/ingest", "/api/milestones/latest",
            "/api/milestones/dead-letter"} <= set(schema["paths"])


def test_schema_documents_the_ingest_headers(schema):
    params = schema["paths"]["/internal/milestones/ingest"]["post"]["parameters"]
    headers = {p["name"] for p in params if p["in"] == "header"}
    assert {"x-openclaw-signature", "x-openclaw-timestamp", "webhook-id", "webhook-timestamp",
            "webhook-signature"} <= headers


def test_schema_documents_every_ingest_response(schema):
    responses = schema["paths"]["/internal/milestones/ingest"]["post"]["responses"]
    assert {"200", "400", "401", "413", "503"} <= set(responses)


def test_docs_ui_loads_its_assets_locally(client):
    page = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in page
    assert "cdn.jsdelivr.net" not in page and "unpkg.com" not in page
    asset = next(part.split('"')[0] for part in page.split('src="')[1:] if "swagger" in part)
    assert client.get(asset).status_code == 200
