"""The emit API's ``Idempotency-Key`` header (SPEC §7), in process."""

from __future__ import annotations

import pytest

from clawdbot.eventstore import store
from orchestrator_app import events as ev
from orchestrator_app.models import Delivery, EmittedMilestone
from orchestrator_app.services.replay import milestone_replay
from tests.factories import MilestoneEventFactory
from tests.orchestrator.factories import TargetFactory

pytestmark = pytest.mark.django_db
EMIT = "/api/orchestrator/milestones"


def _post(client, token: str, body: dict, key: str | None):
    headers = {"HTTP_AUTHORIZATION": f"Token {token}"}
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(EMIT, body, content_type="application/json", **headers)


def test_the_key_becomes_the_envelopes_idempotency_key(client, operator_token):
    TargetFactory(name="a")
    response = _post(client, operator_token, {"event": MilestoneEventFactory()}, "task-42-run-1")
    assert response.status_code == 202
    assert response.json()["idempotencyKey"] == "task-42-run-1"
    assert EmittedMilestone.objects.get().idempotency_key == "task-42-run-1"
    assert "Idempotent-Replayed" not in response.headers


def test_a_retry_with_the_same_key_and_body_gets_the_first_answer_and_emits_nothing(
        client, operator_token):
    TargetFactory(name="a")
    TargetFactory(name="b")
    body = {"event": MilestoneEventFactory(), "context": {"sourceTaskId": "t-1"}}
    first = _post(client, operator_token, body, "k-1")
    events_after_first = store.count()
    retry = _post(client, operator_token, body, "k-1")
    assert retry.status_code == 202
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert store.count() == events_after_first
    assert EmittedMilestone.objects.count() == 1 and Delivery.objects.count() == 2


def test_the_same_content_in_another_key_order_is_the_same_request(client, operator_token):
    TargetFactory()
    event = MilestoneEventFactory()
    first = _post(client, operator_token, {"event": event}, "k-order")
    retry = _post(client, operator_token, {"event": dict(reversed(list(event.items())))},
                  "k-order")
    assert retry.status_code == 202 and retry.json() == first.json()


def test_another_body_with_a_used_key_is_409_and_emits_nothing(client, operator_token):
    TargetFactory()
    _post(client, operator_token, {"event": MilestoneEventFactory(claim="first")}, "k-2")
    events = store.count()
    other = _post(client, operator_token, {"event": MilestoneEventFactory(claim="second")}, "k-2")
    assert other.status_code == 409
    assert "Idempotency-Key" in other.json()["errors"]
    assert store.count() == events
    assert EmittedMilestone.objects.get().event["claim"] == "first"


def test_the_first_answer_survives_a_later_replay_to_a_new_target(client, operator_token):
    TargetFactory(name="a")
    body = {"event": MilestoneEventFactory()}
    first = _post(client, operator_token, body, "k-3").json()
    later = TargetFactory(name="later")
    milestone_replay(idempotency_key="k-3", targets=[later], actor="ops", reason="new target")
    assert _post(client, operator_token, body, "k-3").json() == first
    assert len(first["deliveries"]) == 1


@pytest.mark.parametrize("key", ["", " padded ", "é", "x" * 201, "target-default"])
def test_an_unusable_key_is_400_naming_the_header(client, operator_token, key):
    TargetFactory()
    response = _post(client, operator_token, {"event": MilestoneEventFactory()}, key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["errors"]
    assert not EmittedMilestone.objects.exists()


def test_a_key_used_by_a_backfill_is_not_answered_as_a_retry(client, operator_token):
    # A stream made without a request fingerprint can never prove it was this request.
    TargetFactory()
    body = {"event": MilestoneEventFactory()}
    from orchestrator_app.services.emit import milestone_emit
    milestone_emit(event=body["event"], idempotency_key="k-4")
    assert _post(client, operator_token, body, "k-4").status_code == 409
    assert store.count(types=[ev.MILESTONE_EMITTED]) == 1
