from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_health_reports_the_database_server(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["database"].startswith("PostgreSQL ")


def test_admin_login_page_is_served(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert b"ClawDBot operations" in response.content


def test_staff_sees_the_event_log_read_only(admin_client):
    response = admin_client.get("/admin/eventstore/event/")
    assert response.status_code == 200
    assert b"Add event" not in response.content
