"""Every outcome rule of SPEC §7, with an injected transport."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from clawdbot.contract import envelope_bytes, legacy_verify, parse_json, webhook_verify
from clawdbot.eventstore import store
from orchestrator_app import events as ev
from orchestrator_app.models import Delivery, DeliveryAttempt, EmittedMilestone, Status, Target
from orchestrator_app.services.delivery import deliveries_run
from orchestrator_app.services.emit import milestone_emit
from orchestrator_app.services.triage import delivery_discard
from orchestrator_app.transport import TransportResponse
from tests.factories import MilestoneEventFactory
from tests.orchestrator.factories import (
    LEGACY_SECRET,
    WEBHOOK_SECRET,
    TargetFactory,
)

pytestmark = pytest.mark.django_db


def _emit(**target: object) -> Delivery:
    TargetFactory(name="t", **target)
    result = milestone_emit(event=MilestoneEventFactory())
    return Delivery.objects.get(idempotency_key=result.idempotency_key)


def _run(transport, *answers: TransportResponse) -> Delivery:
    transport.script.extend(answers)
    (delivery,) = deliveries_run(transport=transport)
    return delivery


def test_2xx_is_delivered(transport):
    _emit()
    delivery = _run(transport, TransportResponse(200, b'{"ok":true,"status":"accepted"}'))
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        Status.DELIVERED, 1, None)


def test_2xx_with_status_duplicate_is_duplicate(transport):
    _emit()
    delivery = _run(transport, TransportResponse(200, b'{"ok":true,"status":"duplicate"}'))
    assert delivery.status == Status.DUPLICATE


@pytest.mark.parametrize("code", [400, 401, 404, 413, 422])
def test_other_4xx_is_rejected_at_once(transport, code):
    _emit()
    delivery = _run(transport, TransportResponse(code, b'{"ok":false,"reason":"bad"}'))
    assert (delivery.status, delivery.attempts) == (Status.REJECTED, 1)
    assert delivery.last_error.startswith(f"HTTP {code}")


@pytest.mark.parametrize("code", [408, 425, 429, 500, 502, 503])
def test_retryable_status_schedules_a_retry(transport, code):
    _emit(retry_schedule="60")
    before = timezone.now()
    delivery = _run(transport, TransportResponse(code))
    assert (delivery.status, delivery.attempts) == (Status.RETRYING, 1)
    assert before + timedelta(seconds=47) < delivery.next_attempt_at
    assert delivery.next_attempt_at < timezone.now() + timedelta(seconds=73)


def test_network_error_schedules_a_retry_with_the_error(transport):
    _emit(retry_schedule="60")
    delivery = _run(transport, TransportResponse(None, error="ConnectError: refused"))
    assert delivery.status == Status.RETRYING
    assert delivery.last_error == "ConnectError: refused"


def test_exhausted_attempts_dead_letter(transport):
    _emit(retry_schedule="0,0")
    for _ in range(2):
        assert _run(transport, TransportResponse(503)).status == Status.RETRYING
    delivery = _run(transport, TransportResponse(503))
    assert (delivery.status, delivery.attempts) == (Status.DEAD_LETTER, 3)
    assert not deliveries_run(transport=transport)


def test_retry_then_success(transport):
    _emit(retry_schedule="0")
    _run(transport, TransportResponse(503))
    assert _run(transport, TransportResponse(200, b"{}")).status == Status.DELIVERED


def test_retry_after_is_honoured(transport):
    _emit(retry_schedule="0")
    before = timezone.now()
    delivery = _run(transport, TransportResponse(429, headers={"Retry-After": "120"}))
    assert abs((delivery.next_attempt_at - before).total_seconds() - 120) < 2


def test_410_rejects_and_pauses_the_target(transport):
    delivery = _emit()
    milestone_emit(event=MilestoneEventFactory())
    transport.script.append(TransportResponse(410))
    first, = deliveries_run(transport=transport, limit=1)
    assert first.status == Status.REJECTED
    assert Target.objects.get(name="t").paused_at is not None
    assert [e.type for e in store.read_stream(ev.target_stream("t"))] == [ev.TARGET_PAUSED]
    assert deliveries_run(transport=transport) == []  # the other one is held
    assert delivery.pk == first.pk


def test_each_attempt_is_one_event_with_code_duration_and_excerpt(transport):
    delivery = _emit(retry_schedule="0")
    _run(transport, TransportResponse(503, b"x" * 5000, duration_ms=12.5))
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert (attempt.number, attempt.status_code, attempt.duration_ms) == (1, 503, 12.5)
    assert len(attempt.response_excerpt.encode()) <= 2048
    types = [e.type for e in store.read_stream(ev.milestone_stream(delivery.idempotency_key))]
    assert types.count(ev.DELIVERY_ATTEMPTED) == 1


def test_request_carries_exact_bytes_signed_with_both_schemes(transport):
    delivery = _emit()
    _run(transport, TransportResponse(200, b"{}"))
    sent = transport.requests[0]
    envelope = parse_json(sent["body"])
    assert envelope_bytes(envelope) == sent["body"]
    assert envelope["idempotencyKey"] == delivery.idempotency_key
    assert envelope["sentAtUtc"].endswith("Z")
    h = sent["headers"]
    assert legacy_verify([LEGACY_SECRET], envelope, h["x-openclaw-signature"])
    webhook_verify([WEBHOOK_SECRET], h["webhook-id"], h["webhook-timestamp"],
                   h["webhook-signature"], sent["body"], now=time.time())
    assert sent["timeout"] == 2.0


def test_every_attempt_sends_the_bytes_the_emit_recorded(transport):
    delivery = _emit(retry_schedule="0,0")
    (emitted,) = [e for e in store.read_stream(ev.milestone_stream(delivery.idempotency_key))
                  if e.type == ev.MILESTONE_EMITTED]
    _run(transport, TransportResponse(503))
    _run(transport, TransportResponse(200, b"{}"))
    bodies = {r["body"] for r in transport.requests}
    assert len(transport.requests) == 2
    assert bodies == {emitted.data["envelope"].encode()}
    stored = EmittedMilestone.objects.get(pk=delivery.idempotency_key).envelope
    assert stored == emitted.data["envelope"]


def test_target_signing_only_legacy_sends_no_webhook_headers(transport):
    _emit(sign_webhook=False)
    _run(transport, TransportResponse(200, b"{}"))
    headers = transport.requests[0]["headers"]
    assert "x-openclaw-signature" in headers and "webhook-signature" not in headers


def test_attempt_finishing_after_a_discard_is_recorded_without_changing_status(transport):
    delivery = _emit()

    class DiscardWhileSending:
        def post(self, url, **kwargs):
            delivery_discard(delivery_id=str(delivery.pk), actor="ops", reason="obsolete")
            return TransportResponse(200, b"{}")

    result, = deliveries_run(transport=DiscardWhileSending())
    assert (result.status, result.attempts) == (Status.DISCARDED, 1)


def test_leased_delivery_is_not_claimed_twice(transport):
    from orchestrator_app.services.delivery import deliveries_claim

    _emit()
    assert len(deliveries_claim(limit=10)) == 1
    assert deliveries_claim(limit=10) == []


def test_target_url_the_transport_cannot_use_is_a_failed_attempt_not_a_lost_batch(transport):
    from orchestrator_app.transport import KeepAliveTransport

    TargetFactory(name="good")
    TargetFactory(name="bad-port", url="http://127.0.0.1:99999/internal/milestones/ingest")
    milestone_emit(event=MilestoneEventFactory())

    class Routed:  # the fake for "good", the real transport for the unusable URL
        def post(self, url, **kwargs):
            real = KeepAliveTransport() if ":99999" in url else transport
            return real.post(url, **kwargs)

    outcome = {d.target: d for d in deliveries_run(transport=Routed())}
    assert outcome["good"].status == Status.DELIVERED
    assert outcome["bad-port"].status == Status.RETRYING
    assert "out of range" in outcome["bad-port"].last_error


@pytest.mark.parametrize("schedule", ["abc", "nan", "inf"])
def test_unusable_retry_schedule_dead_letters_naming_it_instead_of_failing_the_batch(
        transport, schedule):
    _emit(retry_schedule=schedule)
    delivery = _run(transport, TransportResponse(503))
    assert delivery.status == Status.DEAD_LETTER
    last = store.read_stream(ev.milestone_stream(delivery.idempotency_key))[-1]
    assert last.type == ev.DELIVERY_DEAD_LETTERED
    assert f"invalid retry schedule {schedule!r}" in last.data["reason"]


def test_lease_covers_the_attempts_queued_ahead_in_the_same_claim(settings):
    from orchestrator_app.services.delivery import deliveries_claim

    settings.MILESTONE_LEASE_MARGIN_S = 1.0
    TargetFactory(name="t", timeout_s=10.0)
    for _ in range(3):
        milestone_emit(event=MilestoneEventFactory())
    before = timezone.now()
    claims = deliveries_claim(limit=10, parallel=2)
    leases = [Delivery.objects.get(pk=c.delivery_id).lease_expires_at for c in claims]
    # Two are sent at once, the third after one of them: up to two timeouts from now.
    waits = [round((lease - before).total_seconds()) for lease in leases]
    assert waits == [11, 11, 21]


def test_410_pause_reason_does_not_copy_credentials_from_the_target_url(transport):
    _emit(url="https://ops:hunter2@receiver.example/ingest?token=s3cret")
    _run(transport, TransportResponse(410))
    paused, = store.read_stream(ev.target_stream("t"))
    recorded = f"{paused.data} {Target.objects.get(name='t').paused_reason}"
    assert "hunter2" not in recorded and "s3cret" not in recorded
    assert "410" in paused.data["reason"]
