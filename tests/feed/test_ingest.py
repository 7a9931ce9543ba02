"""POST /internal/milestones/ingest: responses of SPEC §4 and what each one stores."""

from __future__ import annotations

import json
import time

import pytest
from django.test import override_settings

from clawdbot import contract
from clawdbot.eventstore import store
from feed_app.models import DeadLetter, FeedItem
from tests.factories import EnvelopeFactory, MilestoneEventFactory
from tests.feed.factories import signed

pytestmark = pytest.mark.django_db


def test_signed_legacy_envelope_is_accepted(ingest):
    envelope = EnvelopeFactory()
    response = ingest.send(envelope)
    assert response.status_code == 200
    assert response.json() == {
        "ok": True, "status": "accepted", "milestoneId": envelope["event"]["milestoneId"]
    }


@pytest.mark.parametrize("accept", ["text/plain", "application/xml"])
def test_accept_header_does_not_refuse_a_signed_envelope(ingest, accept):
    # The contract answers JSON whatever the sender accepts; a 406 would lose the milestone
    # (the sender treats it as a rejection) without a dead-letter record.
    body, headers = signed()
    response = ingest.post(body, {**headers, "accept": accept})
    assert response.status_code == 200 and response.json()["status"] == "accepted"


def test_standard_webhooks_envelope_is_accepted(ingest):
    response = ingest.send(legacy=False, webhook=True)
    assert response.json()["status"] == "accepted"


def test_both_header_sets_are_accepted(ingest):
    assert ingest.send(legacy=True, webhook=True).json()["status"] == "accepted"


def test_accepted_milestone_is_an_event_and_a_feed_item(ingest):
    envelope = EnvelopeFactory()
    ingest.send(envelope)
    (event,) = store.read_stream(f"feed-ingest-{envelope['idempotencyKey']}")
    assert event.type == "feed.milestone_accepted"
    assert event.data["event"] == envelope["event"]
    item = FeedItem.objects.get(idempotency_key=envelope["idempotencyKey"])
    assert item.position == event.position
    assert item.event == envelope["event"]


def test_same_key_again_is_a_duplicate_and_stores_nothing_new(ingest):
    envelope = EnvelopeFactory()
    ingest.send(envelope)
    events_before = store.count()
    response = ingest.send(envelope)
    assert response.json() == {
        "ok": True, "status": "duplicate", "milestoneId": envelope["event"]["milestoneId"]
    }
    assert store.count() == events_before
    assert FeedItem.objects.count() == 1


def test_duplicate_reports_the_stored_milestone_id(ingest):
    first = EnvelopeFactory()
    ingest.send(first)
    again = EnvelopeFactory(idempotencyKey=first["idempotencyKey"])
    assert ingest.send(again).json()["milestoneId"] == first["event"]["milestoneId"]


def test_signature_survives_reindenting_and_reordering(ingest):
    envelope = EnvelopeFactory()
    _, headers = signed(envelope)
    body = json.dumps(dict(reversed(list(envelope.items()))), indent=4).encode()
    assert ingest.post(body, headers).json()["status"] == "accepted"


def test_unknown_fields_are_kept_and_signed(ingest):
    envelope = EnvelopeFactory(event=MilestoneEventFactory(extra={"team": "core"}), trace="t-1")
    assert ingest.send(envelope).json()["status"] == "accepted"
    assert FeedItem.objects.get().event["extra"] == {"team": "core"}


def test_any_configured_legacy_secret_verifies(ingest, settings):
    old = contract.generate_legacy_secret()
    body, headers = signed()  # signed with the current secret
    settings.MILESTONE_SIGNING_SECRET = f"{old},{settings.MILESTONE_SIGNING_SECRET}"
    assert ingest.post(body, headers).json()["status"] == "accepted"


def _rejected(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["ok"] is False and body["status"] == "rejected" and body["reason"]
    return body


def test_missing_signature_headers_is_401(ingest):
    _rejected(ingest.post(json.dumps(EnvelopeFactory()).encode()), 401)


def test_missing_legacy_timestamp_is_401(ingest):
    body, headers = signed()
    del headers["x-openclaw-timestamp"]
    assert "x-openclaw-timestamp" in _rejected(ingest.post(body, headers), 401)["reason"]


def test_wrong_legacy_signature_is_401(ingest):
    body, headers = signed()
    headers["x-openclaw-signature"] = "0" * 64
    _rejected(ingest.post(body, headers), 401)


def test_tampered_body_is_401(ingest):
    envelope = EnvelopeFactory()
    _, headers = signed(envelope)
    envelope["event"]["claim"] = "Something else."
    _rejected(ingest.post(json.dumps(envelope).encode(), headers), 401)


def test_stale_webhook_timestamp_is_401(ingest):
    body, headers = signed(legacy=False, webhook=True, now=time.time() - 3600)
    assert "too old" in _rejected(ingest.post(body, headers), 401)["reason"]


def test_webhook_id_other_than_the_key_is_401(ingest):
    body, headers = signed(legacy=False, webhook=True)
    headers["webhook-id"] = "another-key"
    _rejected(ingest.post(body, headers), 401)


def test_body_that_is_not_json_is_400(ingest):
    body = _rejected(ingest.post(b"{not json", {"x-openclaw-signature": "a",
                                                 "x-openclaw-timestamp": "t"}), 400)
    assert "body" in body["errors"]


def test_headers_are_checked_before_json(ingest):
    _rejected(ingest.post(b"{not json"), 401)


def test_missing_idempotency_key_is_400_naming_it(ingest):
    envelope = EnvelopeFactory()
    del envelope["idempotencyKey"]
    body = _rejected(ingest.send(envelope), 400)
    assert list(body["errors"]) == ["idempotencyKey"]


def test_idempotency_key_is_checked_before_the_signature(ingest):
    envelope = EnvelopeFactory(idempotencyKey="")
    _rejected(ingest.post(json.dumps(envelope).encode(), {"x-openclaw-signature": "bad",
                                                          "x-openclaw-timestamp": "t"}), 400)


def test_signature_is_checked_before_the_event(ingest):
    envelope = EnvelopeFactory(event=MilestoneEventFactory(evidence=[]))
    _rejected(ingest.post(json.dumps(envelope).encode(), {"x-openclaw-signature": "bad",
                                                          "x-openclaw-timestamp": "t"}), 401)


def test_invalid_event_is_400_naming_every_failing_field(ingest):
    event = MilestoneEventFactory(evidence=[], riskStatus="fine")
    del event["claim"]
    body = _rejected(ingest.send(EnvelopeFactory(event=event)), 400)
    assert {"event.evidence", "event.riskStatus", "event.claim"} <= set(body["errors"])
    assert FeedItem.objects.count() == 0


@pytest.mark.parametrize("text", ["nul \x00 inside", "lone \ud800 surrogate"])
def test_unstorable_text_is_400_not_500(ingest, text):
    envelope = EnvelopeFactory(event=MilestoneEventFactory(claim=text))
    body = _rejected(ingest.send(envelope), 400)
    assert "event.claim" in body["errors"]
    assert DeadLetter.objects.get().reason_code == "unstorable_content"


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"1" + b"0" * 401])
def test_number_beyond_a_double_is_400_not_500(ingest, number):
    # JSON.parse makes it Infinity; jsonb cannot hold that, so storing it failed.
    envelope = EnvelopeFactory(event=MilestoneEventFactory(extra=0))
    body = contract.envelope_bytes(envelope).replace(b'"extra":0', b'"extra":' + number)
    body = _rejected(ingest.post(*signed(envelope, body=body, legacy=False, webhook=True)), 400)
    assert "event.extra" in body["errors"]
    assert DeadLetter.objects.get().reason_code == "unstorable_content"
    assert FeedItem.objects.count() == 0


@override_settings(MILESTONE_INGEST_MAX_BYTES=1024)
def test_body_over_the_limit_is_413(ingest):
    envelope = EnvelopeFactory(event=MilestoneEventFactory(claim="x" * 2000))
    _rejected(ingest.send(envelope), 413)
    letter = DeadLetter.objects.get()
    assert letter.http_status == 413 and letter.body_bytes > 1024


@pytest.mark.parametrize(
    ("mutate", "status", "code"),
    [
        (lambda b, h: (b, {}), 401, "missing_signature"),
        (lambda b, h: (b"[1,", h), 400, "invalid_json"),
        (lambda b, h: (b, {**h, "x-openclaw-signature": "f" * 64}), 401, "signature_invalid"),
    ],
)
def test_every_rejection_is_recorded_in_the_dead_letter(ingest, mutate, status, code):
    body, headers = mutate(*signed(EnvelopeFactory(idempotencyKey="dl-key")))
    ingest.post(body, headers)
    letter = DeadLetter.objects.get()
    assert (letter.http_status, letter.reason_code) == (status, code)
    assert letter.remote_addr == "203.0.113.7"
    assert len(letter.body_sha256) == 64
    assert store.count() == 0  # a rejection appends nothing to the event log


def test_dead_letter_keeps_the_key_when_known(ingest):
    body, headers = signed(EnvelopeFactory(idempotencyKey="known-key"))
    headers["x-openclaw-signature"] = "0" * 64
    ingest.post(body, headers)
    assert DeadLetter.objects.get().idempotency_key == "known-key"


def test_dead_letter_never_holds_a_secret_or_the_whole_body(ingest):
    envelope = EnvelopeFactory(event=MilestoneEventFactory(claim="y" * 20_000, riskStatus="bad"))
    body, headers = signed(envelope, webhook=True)
    ingest.post(body, headers)
    stored = json.dumps(list(DeadLetter.objects.values().get().values()), default=str)
    for secret in _all_secrets():
        assert secret not in stored
    assert headers["x-openclaw-signature"] not in stored
    assert headers["webhook-signature"].split(",", 1)[1] not in stored
    assert len(stored) < 4096


def _all_secrets() -> list[str]:
    from tests.feed.factories import legacy_secrets, webhook_secrets

    return legacy_secrets() + webhook_secrets()
