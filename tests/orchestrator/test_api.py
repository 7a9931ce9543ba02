from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from orchestrator_app.models import Delivery, Status
from orchestrator_app.services.emit import milestone_emit
from tests.factories import MilestoneEventFactory
from tests.orchestrator.factories import TargetFactory

pytestmark = pytest.mark.django_db
EMIT = "/api/orchestrator/milestones"
LIST = "/api/orchestrator/deliveries"


def _auth(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Token {token}"}


def test_emit_answers_202_with_the_key_and_queued_deliveries(client, operator_token):
    TargetFactory(name="a")
    body = {"event": MilestoneEventFactory(), "context": {"sourceTaskId": "task-7"}}
    response = client.post(EMIT, body, content_type="application/json", **_auth(operator_token))
    assert response.status_code == 202
    data = response.json()
    assert data["ok"] is True and len(data["idempotencyKey"]) == 32
    assert [(d["target"], d["status"]) for d in data["deliveries"]] == [("a", "pending")]


def test_emit_accepts_a_bare_milestone_event(client, operator_token):
    TargetFactory()
    response = client.post(EMIT, MilestoneEventFactory(), content_type="application/json",
                           **_auth(operator_token))
    assert response.status_code == 202


def test_emit_of_an_invalid_event_is_400_with_field_errors(client, operator_token):
    response = client.post(EMIT, {"event": MilestoneEventFactory(evidence=[])},
                           content_type="application/json", **_auth(operator_token))
    assert response.status_code == 400
    assert "evidence" in response.json()["errors"]
    assert not Delivery.objects.exists()


def test_emit_needs_an_operator(client):
    anonymous = client.post(EMIT, {}, content_type="application/json")
    user = get_user_model().objects.create_user("viewer")
    token = Token.objects.create(user=user).key
    non_staff = client.post(EMIT, {}, content_type="application/json", **_auth(token))
    assert anonymous.status_code == 401
    assert non_staff.status_code == 403


def test_deliveries_list_has_the_spec_fields(client, operator_token):
    TargetFactory(name="a")
    key = milestone_emit(event=MilestoneEventFactory(milestoneId="m.1")).idempotency_key
    item, = client.get(LIST, **_auth(operator_token)).json()["items"]
    assert {"idempotencyKey", "milestoneId", "target", "status", "attempts", "lastError",
            "lastAttemptAtUtc", "nextAttemptAtUtc"} <= set(item)
    assert (item["idempotencyKey"], item["milestoneId"], item["status"]) == (key, "m.1", "pending")


def test_deliveries_filter_by_status_target_and_milestone(client, operator_token):
    TargetFactory(name="a")
    TargetFactory(name="b")
    milestone_emit(event=MilestoneEventFactory(milestoneId="m.1"))
    milestone_emit(event=MilestoneEventFactory(milestoneId="m.2"))
    Delivery.objects.filter(target="b", milestone_id="m.2").update(status=Status.DEAD_LETTER)

    def ids(query: str) -> list[tuple[str, str]]:
        items = client.get(f"{LIST}?{query}", **_auth(operator_token)).json()["items"]
        return sorted((i["milestoneId"], i["target"]) for i in items)

    assert ids("status=dead-letter") == [("m.2", "b")]
    assert len(ids("status=dead-letter,pending")) == len(ids("status=dead-letter&status=pending"))
    assert len(ids("status=dead-letter,pending")) == 4
    assert ids("target=a") == [("m.1", "a"), ("m.2", "a")]
    assert ids("milestoneId=m.1") == [("m.1", "a"), ("m.1", "b")]
    assert client.get(f"{LIST}?status=bogus", **_auth(operator_token)).status_code == 400


def test_deliveries_paginate_with_a_cursor(client, operator_token):
    TargetFactory()
    for _ in range(5):
        milestone_emit(event=MilestoneEventFactory())
    seen, cursor = [], ""
    while True:
        page = client.get(f"{LIST}?limit=2&cursor={cursor}", **_auth(operator_token)).json()
        seen += [i["id"] for i in page["items"]]
        if not page["next"]:
            break
        cursor = page["next"]
    assert len(seen) == len(set(seen)) == 5
    assert client.get(f"{LIST}?cursor=nope", **_auth(operator_token)).status_code == 400


@pytest.mark.parametrize("count", [2**53 + 1, 10**21])
def test_emit_refuses_an_integer_the_signature_would_round_naming_its_path(
        client, operator_token, count):
    TargetFactory()
    event = MilestoneEventFactory(extra={"metrics": {"count": count}})
    response = client.post(EMIT, {"event": event}, content_type="application/json",
                           **_auth(operator_token))
    assert response.status_code == 400, response.content
    assert "extra.metrics.count" in response.json()["errors"]
    assert not Delivery.objects.exists()
