"""The emit API refuses what its columns cannot hold, with a 400 naming the field.

Reproduced before: a 501-character milestoneId or a 201-character ``context.actor``
passed validation and failed inserting the outbox's projection rows: a 500.
"""

from __future__ import annotations

import pytest

from orchestrator_app.models import Delivery, EmittedMilestone
from tests.factories import MilestoneEventFactory
from tests.orchestrator.factories import TargetFactory

pytestmark = pytest.mark.django_db
EMIT = "/api/orchestrator/milestones"


def _emit(client, token: str, body: dict, **headers: str):
    return client.post(EMIT, body, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Token {token}", **headers)


@pytest.mark.parametrize(("body", "field"), [
    ({"event": MilestoneEventFactory(milestoneId="m" * 501)}, "milestoneId"),
    ({"event": MilestoneEventFactory(scope="s" * 501)}, "scope"),
    ({"event": MilestoneEventFactory(), "context": {"actor": "a" * 201}}, "context.actor"),
    ({"event": MilestoneEventFactory(), "context": {"sourceTaskId": "t" * 201}},
     "context.sourceTaskId"),
    ({"event": MilestoneEventFactory(), "context": {"sourceRunId": "r" * 201}},
     "context.sourceRunId"),
])
def test_an_over_long_value_is_400_naming_the_field(client, operator_token, body, field):
    TargetFactory()
    response = _emit(client, operator_token, body)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not EmittedMilestone.objects.exists() and not Delivery.objects.exists()


def test_values_at_their_limits_are_emitted(client, operator_token):
    TargetFactory()
    body = {"event": MilestoneEventFactory(milestoneId="m" * 500),
            "context": {"actor": "a" * 200, "sourceTaskId": "t" * 200}}
    response = _emit(client, operator_token, body)
    assert response.status_code == 202, response.content
    assert EmittedMilestone.objects.get().actor == "a" * 200


def test_an_over_long_idempotency_key_header_is_400_naming_it(client, operator_token):
    TargetFactory()
    response = _emit(client, operator_token, {"event": MilestoneEventFactory()},
                     HTTP_IDEMPOTENCY_KEY="k" * 201)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["errors"]
