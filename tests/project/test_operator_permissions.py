"""The operator API asks what the admin asks: staff, plus the model permission of the action.

A view-only operator reads but cannot pause, resume, rotate, change, create or emit; a
staff user without permissions gets nothing; every refusal leaves the data as it was.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

from clawdbot.eventstore.models import Event
from orchestrator_app.models import Delivery, Target
from tests.factories import MilestoneEventFactory
from tests.orchestrator.factories import TargetFactory

pytestmark = pytest.mark.django_db
T = "/api/orchestrator/targets"

READS = [("get", T), ("get", f"{T}/t"), ("get", "/api/orchestrator/deliveries"),
         ("get", "/api/milestones/dead-letter")]
WRITES = [
    ("post", T, {"name": "new", "url": "http://127.0.0.1:9/x"}),
    ("patch", f"{T}/t", {"url": "http://attacker.example/x"}),
    ("post", f"{T}/t/pause", {"reason": "r"}),
    ("post", f"{T}/t/resume", {"reason": "r"}),
    ("post", f"{T}/t/rotate-secret", {"signingSecret": "x" * 40}),
    ("post", "/api/orchestrator/milestones", {"event": {"milestoneId": "m"}}),
]


def _token(*, groups: tuple[str, ...] = (), staff: bool = True) -> str:
    user = get_user_model().objects.create_user(f"u{'-'.join(groups) or 'none'}{staff}",
                                                is_staff=staff)
    for name in groups:
        user.groups.add(Group.objects.get(name=name))
    return Token.objects.create(user=user).key


def _call(client, token: str, method: str, path: str, body: object = None):
    return getattr(client, method)(path, json.dumps(body) if body is not None else None,
                                   content_type="application/json",
                                   HTTP_AUTHORIZATION=f"Token {token}")


@pytest.fixture
def target():
    return TargetFactory(name="t", url="http://127.0.0.1:9/in")


def _state() -> tuple[object, ...]:
    t = Target.objects.get(name="t")
    return (Target.objects.count(), t.url, t.is_active, t.legacy_secrets,
            Event.objects.count(), Delivery.objects.count())


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=[w[1] + w[0] for w in WRITES])
def test_a_view_only_operator_is_refused_every_change_and_nothing_changes(
        client, target, method, path, body):
    token = _token(groups=("viewers",))
    before = _state()
    response = _call(client, token, method, path, body)
    assert response.status_code == 403, response.content
    assert "permission" in response.json()["reason"]
    assert _state() == before


@pytest.mark.parametrize(("method", "path"), READS, ids=[r[1] for r in READS])
def test_a_view_only_operator_reads_and_a_staff_user_without_permissions_does_not(
        client, target, method, path):
    assert _call(client, _token(groups=("viewers",)), method, path).status_code == 200
    assert _call(client, _token(), method, path).status_code == 403
    assert _call(client, _token(groups=("operators",), staff=False), method,
                 path).status_code == 403


def test_the_operators_group_may_do_each_change(client, target):
    token = _token(groups=("operators",))
    assert _call(client, token, "post", f"{T}/t/pause", {"reason": "r"}).status_code == 200
    assert _call(client, token, "post", f"{T}/t/resume", {"reason": "r"}).status_code == 200
    event = MilestoneEventFactory()
    assert _call(client, token, "post", "/api/orchestrator/milestones",
                 {"event": event}).status_code == 202


def test_the_groups_hold_the_pipelines_permissions_and_no_others():
    viewers = set(Group.objects.get(name="viewers").permissions.values_list(
        "content_type__app_label", "codename"))
    operators = set(Group.objects.get(name="operators").permissions.values_list(
        "content_type__app_label", "codename"))
    assert ("orchestrator_app", "view_target") in viewers
    assert all(code.startswith("view_") for _, code in viewers)
    assert {("orchestrator_app", "change_target"), ("orchestrator_app", "change_delivery"),
            ("feed_app", "view_deadletter")} <= operators
    assert viewers < operators
    assert {app for app, _ in operators} <= {"orchestrator_app", "feed_app", "eventstore"}
