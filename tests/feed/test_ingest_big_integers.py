"""Integers beyond 2**53: what is stored must be what was signed.

The legacy signature covers the canonical form, in which JavaScript has rounded every
integer to a double: ``9007199254740993`` is signed as ``9007199254740992``. Stored exact,
the milestone would hold a number no signature ever covered, so the ingest refuses it with
a 400 naming its path. Integers a JavaScript sender can write (its doubles' own digits,
``123456789012345680000``) are what they are signed as, and are stored as sent.
"""

from __future__ import annotations

import pytest

from clawdbot import contract
from feed_app.models import DeadLetter, FeedItem
from tests.factories import EnvelopeFactory, MilestoneEventFactory
from tests.feed.test_ingest_batch import batch_of, post, signed_batch

pytestmark = pytest.mark.django_db

INEXACT = [2**53 + 1, -(2**53) - 1, 123456789012345678901, 10**21, 2**64]
EXACT = [2**53, 123456789012345680000, -1152921504606847000]


def _with_count(count: int) -> dict:
    return EnvelopeFactory(event=MilestoneEventFactory(extra={"metrics": [{"count": count}]}))


@pytest.mark.parametrize("webhook", [False, True], ids=["legacy", "webhook"])
@pytest.mark.parametrize("count", INEXACT)
def test_an_integer_javascript_rounds_is_400_naming_its_path(ingest, count, webhook):
    response = ingest.send(_with_count(count), legacy=not webhook, webhook=webhook)
    assert response.status_code == 400, response.content
    body = response.json()
    assert "event.extra.metrics[0].count" in body["errors"]
    assert "2**53" in body["reason"]
    assert DeadLetter.objects.get().reason_code == "inexact_integer"
    assert FeedItem.objects.count() == 0


@pytest.mark.parametrize("count", EXACT)
def test_an_integer_javascript_writes_itself_is_stored_as_signed(ingest, count):
    envelope = _with_count(count)
    assert ingest.send(envelope).json()["status"] == "accepted"
    stored = FeedItem.objects.get().event["extra"]["metrics"][0]["count"]
    assert stored == count
    assert contract.js_number(stored) == str(count)  # the number the signature covered


def test_a_batch_refuses_only_the_item_holding_an_inexact_integer():
    good, bad = EnvelopeFactory(), _with_count(2**53 + 1)
    response = post(*signed_batch(batch_of([good, bad])))
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert "event.extra.metrics[0].count" in results[1]["errors"]
    assert FeedItem.objects.get().idempotency_key == good["idempotencyKey"]
    assert DeadLetter.objects.get().reason_code == "inexact_integer"


def test_the_signature_of_an_inexact_integer_is_the_signature_of_another_number():
    # Why it is refused: both scheme's senders sign the canonical form, which rounds.
    assert contract.canonical_json({"n": 2**53 + 1}) == contract.canonical_json({"n": 2**53})
