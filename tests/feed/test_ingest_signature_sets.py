"""A request carrying both signature header sets (SPEC §3): each set sent must verify.

A sender that signs with both schemes vouches for the body twice; accepting it when one
of the two fails would let a request through on the weaker (or a leaked) secret while the
other scheme says it was forged or replayed.
"""

from __future__ import annotations

import time

import pytest

from clawdbot.eventstore import store
from feed_app.models import DeadLetter, FeedItem
from tests.factories import EnvelopeFactory
from tests.feed.factories import signed
from tests.feed.test_ingest_batch import batch_of, post, signed_batch

pytestmark = pytest.mark.django_db

WRONG_LEGACY = {"x-openclaw-signature": "0" * 64}
WRONG_WEBHOOK = {"webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}


def _refused(response, code: str) -> None:
    assert response.status_code == 401, response.content
    assert response.json()["status"] == "rejected"
    letter = DeadLetter.objects.get()
    assert (letter.reason_code, letter.scheme) == (code, "legacy+webhook")
    assert FeedItem.objects.count() == 0


@pytest.mark.parametrize("wrong", [WRONG_LEGACY, WRONG_WEBHOOK], ids=["legacy", "webhook"])
def test_one_wrong_set_refuses_the_request_whichever_it_is(ingest, wrong):
    body, headers = signed(legacy=True, webhook=True)
    _refused(ingest.post(body, {**headers, **wrong}), "signature_invalid")


def test_a_stale_webhook_timestamp_refuses_even_with_a_valid_legacy_signature(ingest):
    body, headers = signed(legacy=True, webhook=True, now=time.time() - 3600)
    _refused(ingest.post(body, headers), "timestamp_out_of_tolerance")


def test_a_legacy_signature_without_its_timestamp_refuses_a_webhook_signed_request(ingest):
    body, headers = signed(legacy=True, webhook=True)
    del headers["x-openclaw-timestamp"]
    response = ingest.post(body, headers)
    assert "x-openclaw-timestamp" in response.json()["reason"]
    _refused(response, "missing_signature")


def test_a_webhook_signature_without_its_id_refuses_a_legacy_signed_request(ingest):
    body, headers = signed(legacy=True, webhook=True)
    del headers["webhook-id"]
    _refused(ingest.post(body, headers), "missing_signature")


def test_both_sets_valid_is_accepted_and_recorded_as_both(ingest):
    envelope = EnvelopeFactory()
    assert ingest.send(envelope, legacy=True, webhook=True).json()["status"] == "accepted"
    (event,) = store.read_stream(f"feed-ingest-{envelope['idempotencyKey']}")
    assert event.data["scheme"] == "legacy+webhook"


@pytest.mark.parametrize("wrong", [WRONG_LEGACY, WRONG_WEBHOOK], ids=["legacy", "webhook"])
def test_a_batch_with_one_wrong_set_is_refused_whole(wrong):
    batch = batch_of([EnvelopeFactory()])
    body, headers = signed_batch(batch, legacy=True, webhook=True)
    response = post(body, {**headers, **wrong})
    assert response.status_code == 401, response.content
    assert FeedItem.objects.count() == 0
    assert DeadLetter.objects.get().reason_code == "signature_invalid"


def test_a_batch_with_both_sets_valid_is_stored():
    batch = batch_of([EnvelopeFactory()])
    response = post(*signed_batch(batch, legacy=True, webhook=True))
    assert response.json()["results"][0]["status"] == "accepted"

