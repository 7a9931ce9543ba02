"""Duplicates store nothing, so they are counted per hour for the console's ingest chart:
over the Django route, the lean route (real HTTP) and the batch."""

from __future__ import annotations

import httpx
import pytest
from django.utils import timezone

from feed_app.models import DuplicateHour
from feed_app.overview import ingest_overview
from tests.factories import EnvelopeFactory
from tests.feed.factories import signed
from tests.feed.test_ingest_batch import batch_of, send
from tests.liveserver import asgi_server


def _duplicates_this_hour() -> int:
    return sum(DuplicateHour.objects.values_list("count", flat=True))


@pytest.mark.django_db
def test_a_duplicate_is_counted_in_its_hour_and_shown_beside_accepted_and_rejected(ingest):
    envelope = EnvelopeFactory()
    assert ingest.send(envelope).json()["status"] == "accepted"
    assert ingest.send(envelope).json()["status"] == "duplicate"
    assert ingest.send(envelope).json()["status"] == "duplicate"
    assert ingest.post(b"{}").status_code in (400, 401)
    assert _duplicates_this_hour() == 2
    hour, counts = ingest_overview(now=timezone.now()).hourly[-1]
    assert counts == {"accepted": 1, "duplicate": 2, "rejected": 1}


@pytest.mark.django_db
def test_duplicates_inside_and_across_batches_are_counted():
    first, second = EnvelopeFactory(), EnvelopeFactory()
    send(batch_of([first]))
    answer = send(batch_of([first, second, second])).json()
    assert [r["status"] for r in answer["results"]] == ["duplicate", "accepted", "duplicate"]
    assert _duplicates_this_hour() == 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_lean_route_counts_duplicates_too():
    envelope = EnvelopeFactory()
    with asgi_server() as url:
        for expected in ("accepted", "duplicate", "duplicate"):
            body, headers = signed(envelope)
            answer = httpx.post(f"{url}/internal/milestones/ingest", content=body,
                                headers=headers)
            assert answer.json()["status"] == expected
    assert _duplicates_this_hour() == 2
