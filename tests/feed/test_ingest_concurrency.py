"""Exactly one of many concurrent identical deliveries is accepted.

Real HTTP against a real ASGI server process (the one ``make run`` serves): the threaded
WSGI live server's listen backlog of 5 resets connections under 64 simultaneous connects.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from clawdbot.eventstore import store
from feed_app.models import FeedItem
from tests.factories import EnvelopeFactory
from tests.feed.factories import signed
from tests.liveserver import asgi_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CONCURRENT = 64


def test_64_concurrent_identical_requests_give_exactly_one_accepted():
    envelope = EnvelopeFactory()
    body, headers = signed(envelope)
    with asgi_server() as server:
        results = _deliver_at_once(f"{server}/internal/milestones/ingest", body, headers)

    assert {code for code, _ in results} == {200}
    statuses = [status for _, status in results]
    assert statuses.count("accepted") == 1
    assert statuses.count("duplicate") == CONCURRENT - 1
    assert FeedItem.objects.count() == 1
    assert store.count(types=["feed.milestone_accepted"]) == 1


def _deliver_at_once(url: str, body: bytes, headers: dict) -> list[tuple[int, str]]:
    start_line = threading.Barrier(CONCURRENT)

    def deliver(_: int) -> tuple[int, str]:
        with httpx.Client(timeout=30) as client:
            start_line.wait()  # every request leaves at once
            response = client.post(url, content=body, headers=headers)
            return response.status_code, response.json()["status"]

    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        return list(pool.map(deliver, range(CONCURRENT)))
