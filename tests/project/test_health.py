from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator_app import dispatcher
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def running_worker(transactional_db):
    """A dispatcher as a django-q2 worker runs it, stopped at the end."""
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.dispatch_forever, kwargs={"stop": stop},
                              daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)


def test_without_a_worker_health_answers_503_naming_the_worker(client):
    response = client.get("/api/health")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["ok"] is False and body["database"] == "up"
    assert body["worker"] == {"alive": False, "lastHeartbeatUtc": None, "dispatchers": 0}
    assert "worker" in body["reason"]
    assert body["channelLayer"] == "postgres"


def test_a_running_worker_makes_health_ok_with_its_heartbeat(client, running_worker):
    response = wait_for(lambda: (r := client.get("/api/health")).status_code == 200 and r,
                        what="health to see the dispatcher")
    body = response.json()
    assert body["ok"] is True and body["worker"]["alive"] is True
    assert body["worker"]["dispatchers"] == 1
    beat = datetime.fromisoformat(body["worker"]["lastHeartbeatUtc"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - beat) < timedelta(seconds=30)
    assert set(body) == {"ok", "database", "worker", "channelLayer"}


def test_a_worker_draining_a_backlog_without_a_pause_keeps_its_heartbeat(
        client, transactional_db, monkeypatch):
    busy = threading.Event()

    def always_more_due(senders, worker):  # type: ignore[no-untyped-def]
        busy.set()
        time.sleep(0.01)  # pacing the fake claims; the loop never reaches its wait
        return True

    monkeypatch.setattr(dispatcher, "_claim", always_more_due)
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.dispatch_forever, kwargs={"stop": stop},
                              daemon=True)
    thread.start()
    try:
        wait_for(busy.is_set, what="the dispatcher to claim")
        wait_for(lambda: client.get("/api/health").status_code == 200,
                 what="a busy worker's heartbeat")
    finally:
        stop.set()
        thread.join(timeout=10)


def test_anonymous_callers_get_no_version_string_and_staff_do(client, admin_client):
    anonymous = client.get("/api/health")
    assert "PostgreSQL" not in anonymous.content.decode()
    assert "versions" not in anonymous.json()
    staff = admin_client.get("/api/health").json()
    assert staff["versions"]["postgres"][:2].isdigit()


def test_admin_login_page_is_served(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert b"ClawDBot operations" in response.content


def test_staff_sees_the_event_log_read_only(admin_client):
    response = admin_client.get("/admin/eventstore/event/")
    assert response.status_code == 200
    assert b"Add event" not in response.content
