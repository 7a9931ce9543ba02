"""POST /internal/milestones/ingest/batch (SPEC §10): per-item answers, one transaction."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.test import Client, override_settings

from clawdbot import contract
from clawdbot.eventstore import store
from feed_app.models import DeadLetter, FeedItem
from tests.factories import EnvelopeFactory, MilestoneEventFactory
from tests.feed.factories import legacy_secrets, signed, webhook_secrets

pytestmark = pytest.mark.django_db

BATCH = "/internal/milestones/ingest/batch"


def batch_of(envelopes: list[Any], batch_id: str | None = None) -> dict[str, Any]:
    return {"batchId": batch_id or uuid.uuid4().hex, "sentAtUtc": "2026-02-28T12:00:00.000Z",
            "envelopes": envelopes}


def signed_batch(batch: dict[str, Any], *, legacy: bool = True,
                 webhook: bool = False) -> tuple[bytes, dict[str, str]]:
    body = contract.envelope_bytes(batch)
    return signed({"idempotencyKey": batch["batchId"]}, body=body, legacy=legacy,
                  webhook=webhook)


def post(body: bytes, headers: dict[str, str]) -> Any:
    headers = dict(headers)
    content_type = headers.pop("content-type", "application/json")
    return Client(REMOTE_ADDR="203.0.113.9").generic("POST", BATCH, body,
                                                     content_type=content_type, headers=headers)


def send(batch: dict[str, Any], **kwargs: Any) -> Any:
    return post(*signed_batch(batch, **kwargs))


def test_a_mixed_batch_answers_each_item_in_input_order():
    stored_before = EnvelopeFactory()
    post(*signed_batch(batch_of([stored_before])))
    good, twin = EnvelopeFactory(), EnvelopeFactory()
    twin_again = {**twin, "event": MilestoneEventFactory()}  # same key, other content
    invalid = EnvelopeFactory(event=MilestoneEventFactory(evidence=[]))
    batch = batch_of([good, invalid, twin, stored_before, twin_again, {"event": {}}])
    response = send(batch)
    assert response.status_code == 200
    assert response.json() == {"ok": True, "batchId": batch["batchId"], "results": [
        {"idempotencyKey": good["idempotencyKey"], "status": "accepted",
         "milestoneId": good["event"]["milestoneId"]},
        {"idempotencyKey": invalid["idempotencyKey"], "status": "rejected",
         "reason": "envelope or event is invalid",
         "errors": {"event.evidence": [
             "Must hold at least one item: no milestone without evidence."]}},
        {"idempotencyKey": twin["idempotencyKey"], "status": "accepted",
         "milestoneId": twin["event"]["milestoneId"]},
        {"idempotencyKey": stored_before["idempotencyKey"], "status": "duplicate",
         "milestoneId": stored_before["event"]["milestoneId"]},
        {"idempotencyKey": twin["idempotencyKey"], "status": "duplicate",
         "milestoneId": twin["event"]["milestoneId"]},
        {"idempotencyKey": None, "status": "rejected",
         "reason": "body must be a JSON object with a valid idempotencyKey",
         "errors": {"idempotencyKey": ["This field is required."]}},
    ]}
    assert FeedItem.objects.count() == 3
    letters = DeadLetter.objects.order_by("id")
    assert [(d.reason_code, d.idempotency_key, d.http_status) for d in letters] == [
        ("invalid_event", invalid["idempotencyKey"], 400), ("missing_idempotency_key", "", 400)]


def test_a_replayed_batch_answers_every_item_duplicate_and_stores_nothing():
    batch = batch_of([EnvelopeFactory() for _ in range(5)])
    body, headers = signed_batch(batch)
    assert {r["status"] for r in post(body, headers).json()["results"]} == {"accepted"}
    events = store.count()
    again = post(body, headers).json()["results"]
    assert [r["status"] for r in again] == ["duplicate"] * 5
    assert [r["milestoneId"] for r in again] == [e["event"]["milestoneId"]
                                                 for e in batch["envelopes"]]
    assert store.count() == events
    assert FeedItem.objects.count() == 5


def test_batch_items_are_stored_as_single_ingests_store_them(ingest):
    envelope = EnvelopeFactory()
    send(batch_of([envelope]))
    (event,) = store.read_stream(f"feed-ingest-{envelope['idempotencyKey']}")
    assert event.type == "feed.milestone_accepted"
    assert event.data == {"idempotencyKey": envelope["idempotencyKey"],
                          "sentAtUtc": envelope["sentAtUtc"], "scheme": "legacy",
                          "event": envelope["event"]}
    item = FeedItem.objects.get(idempotency_key=envelope["idempotencyKey"])
    assert item.position == event.position and item.event == envelope["event"]
    # and the single endpoint knows it
    assert ingest.send(envelope).json()["status"] == "duplicate"


def test_the_whole_batch_is_one_append_call_in_one_transaction(monkeypatch):
    calls: list[int] = []
    real_batch = store.append_batch

    def counting_batch(appends):
        calls.append(len(appends))
        return real_batch(appends)

    def refused(*args, **kwargs):
        raise AssertionError("a batch item went through the single append")

    monkeypatch.setattr(store, "append_batch", counting_batch)
    monkeypatch.setattr(store, "append", refused)
    batch = batch_of([EnvelopeFactory() for _ in range(20)]
                     + [EnvelopeFactory(event=MilestoneEventFactory(claim=""))])
    assert post(*signed_batch(batch)).status_code == 200
    assert calls == [20]
    events = store.read_all(after=0, limit=100)
    assert len(events) == 20
    assert len({e.recorded_at for e in events}) == 1, "one transaction: one commit time"
    assert DeadLetter.objects.get().reason_code == "invalid_event"


@pytest.mark.parametrize("scheme", ["legacy", "webhook"])
def test_a_wrong_signature_refuses_the_whole_batch_as_one_rejection(scheme):
    batch = batch_of([EnvelopeFactory() for _ in range(3)])
    body, headers = signed_batch(batch, legacy=scheme == "legacy", webhook=scheme == "webhook")
    tampered = body.replace(b'"envelopes"', b'"envelopes" ', 1) if scheme == "webhook" else \
        contract.envelope_bytes({**batch, "batchId": "other"})
    response = post(tampered, headers)
    assert response.status_code == 401
    assert response.json()["ok"] is False
    assert FeedItem.objects.count() == 0
    (letter,) = DeadLetter.objects.all()
    assert letter.reason_code == "signature_invalid"


def test_webhook_id_must_be_the_batch_id():
    batch = batch_of([EnvelopeFactory()])
    body = contract.envelope_bytes(batch)
    headers = contract.signed_headers(body=body, idempotency_key="not-the-batch",
                                      legacy_secrets=[], webhook_secrets=webhook_secrets(),
                                      now=__import__("time").time())
    response = post(body, headers)
    assert response.status_code == 401
    assert response.json()["reason"] == "webhook-id must equal batchId"


def test_both_schemes_with_the_batch_id_are_accepted():
    batch = batch_of([EnvelopeFactory()])
    response = send(batch, legacy=True, webhook=True)
    assert response.json()["results"][0]["status"] == "accepted"
    assert store.read_all()[0].data["scheme"] == "legacy+webhook"


@pytest.mark.parametrize(("batch", "field"), [
    ([], "body"),
    ({"envelopes": []}, "envelopes"),
    ({"batchId": "b", "envelopes": "x"}, "envelopes"),
    ({"batchId": "", "envelopes": [{}]}, "batchId"),
    ({"batchId": "b", "sentAtUtc": "yesterday", "envelopes": [{}]}, "sentAtUtc"),
    ({"batchId": "b", "envelopes": [{}] * 1001}, "envelopes"),
    ({"batchId": "b"}, "envelopes"),
])
def test_a_malformed_batch_is_a_400_recorded_once(batch, field):
    body = json.dumps(batch).encode()
    headers = contract.signed_headers(body=body, idempotency_key="b",
                                      legacy_secrets=legacy_secrets(), webhook_secrets=[],
                                      now=__import__("time").time())
    response = post(body, headers)
    assert response.status_code == 400
    assert response.json()["reason"].startswith("body must be a batch")
    assert field in response.json()["errors"]
    (letter,) = DeadLetter.objects.all()
    assert letter.reason_code == "invalid_batch"


def test_bad_json_and_missing_headers_are_refused_as_a_single_ingest_would():
    headers = signed_batch(batch_of([EnvelopeFactory()]))[1]
    assert post(b"{nope", headers).status_code == 400
    assert post(json.dumps(batch_of([EnvelopeFactory()])).encode(), {}).status_code == 401
    assert [d.reason_code for d in DeadLetter.objects.order_by("id")] == [
        "invalid_json", "missing_signature"]


@override_settings(MILESTONE_INGEST_BATCH_MAX_BYTES=2048)
def test_a_batch_over_the_limit_is_413():
    batch = batch_of([EnvelopeFactory() for _ in range(10)])
    response = send(batch)
    assert response.status_code == 413
    assert DeadLetter.objects.get().reason_code == "body_too_large"


def test_a_batch_of_1000_is_accepted_whole():
    batch = batch_of([EnvelopeFactory() for _ in range(1000)])
    results = send(batch).json()["results"]
    assert len(results) == 1000 and {r["status"] for r in results} == {"accepted"}
    positions = list(FeedItem.objects.order_by("position").values_list("idempotency_key",
                                                                       flat=True))
    assert positions == [e["idempotencyKey"] for e in batch["envelopes"]]
