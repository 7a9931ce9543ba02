"""No input reaches a column it does not fit (#8): each is refused at the edge with a 400
naming the field, or clipped where the column only records it.

Reproduced before: a 600-character milestoneId passed the ingest but broke the emit (the
outbox's 500-character column) with a 500, and a scope of a few KiB that does not compress
broke the feed's scope index (PostgreSQL's B-tree takes at most 2,704 bytes a row).
"""

from __future__ import annotations

import secrets

import pytest

from feed_app.models import DeadLetter, FeedItem
from feed_app.services import EXCERPT_CHARS
from tests.factories import EnvelopeFactory, MilestoneEventFactory
from tests.feed.factories import signed
from tests.feed.test_ingest_batch import batch_of, post, signed_batch

pytestmark = pytest.mark.django_db

LIMIT = {"milestoneId": 500, "scope": 500}
COLUMN = {"milestoneId": "milestone_id", "scope": "scope"}


def _incompressible(chars: int) -> str:
    return secrets.token_urlsafe(chars)[:chars]


@pytest.mark.parametrize("field", sorted(LIMIT))
def test_an_over_long_indexed_field_is_400_naming_it(ingest, field):
    event = MilestoneEventFactory(**{field: _incompressible(LIMIT[field] + 1)})
    response = ingest.send(EnvelopeFactory(event=event))
    assert response.status_code == 400, response.content
    assert f"at most {LIMIT[field]}" in response.json()["errors"][f"event.{field}"][0]
    assert DeadLetter.objects.get().reason_code == "invalid_event"


@pytest.mark.parametrize("field", sorted(LIMIT))
def test_a_field_at_its_limit_in_four_byte_characters_is_stored(ingest, field):
    value = "\U0001f600" * LIMIT[field]  # the most bytes the limit lets through
    response = ingest.send(EnvelopeFactory(event=MilestoneEventFactory(**{field: value})))
    assert response.json()["status"] == "accepted", response.content
    assert getattr(FeedItem.objects.get(), COLUMN[field]) == value


def test_a_scope_of_kilobytes_is_400_not_500_and_stores_nothing(ingest):
    event = MilestoneEventFactory(scope=_incompressible(8000))
    response = ingest.send(EnvelopeFactory(event=event))
    assert response.status_code == 400 and "event.scope" in response.json()["errors"]
    assert FeedItem.objects.count() == 0


def test_a_batch_item_with_an_over_long_field_is_rejected_alone():
    bad = EnvelopeFactory(event=MilestoneEventFactory(milestoneId="m" * 501))
    good = EnvelopeFactory()
    results = post(*signed_batch(batch_of([bad, good]))).json()["results"]
    assert [r["status"] for r in results] == ["rejected", "accepted"]
    assert "event.milestoneId" in results[0]["errors"]


def test_a_rejection_of_over_long_values_is_recorded_clipped(ingest):
    # The dead-letter row only records what came: every value is cut to fit its column.
    body, headers = signed(EnvelopeFactory(idempotencyKey="k" * 5000))
    headers["x-openclaw-signature"] = "f" * 10_000
    response = ingest.post(body + b" " * 100_000, headers)
    assert response.status_code == 400
    letter = DeadLetter.objects.get()
    assert letter.reason_code == "missing_idempotency_key"
    assert len(letter.body_excerpt) <= EXCERPT_CHARS
    assert all(len(path) <= 200 for path in letter.errors)
