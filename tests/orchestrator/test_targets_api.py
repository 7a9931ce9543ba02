"""The targets REST API (SPEC §7): write-only secrets, encrypted at rest, rotation."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from rest_framework.authtoken.models import Token

from clawdbot import encryption
from clawdbot.contract import generate_legacy_secret, generate_webhook_secret
from clawdbot.eventstore.models import Event
from orchestrator_app.models import Target
from orchestrator_app.services.delivery import deliveries_run
from orchestrator_app.services.emit import milestone_emit
from orchestrator_app.transport import TransportResponse
from tests.factories import MilestoneEventFactory
from tests.orchestrator.conftest import FakeTransport
from tests.orchestrator.factories import TargetFactory

pytestmark = pytest.mark.django_db
TARGETS = "/api/orchestrator/targets"


@pytest.fixture
def api(client, operator_token):
    headers = {"HTTP_AUTHORIZATION": f"Token {operator_token}"}

    class Api:
        def get(self, path: str):
            return client.get(path, **headers)

        def post(self, path: str, body: object):
            return client.post(path, json.dumps(body), content_type="application/json",
                               **headers)

        def patch(self, path: str, body: object):
            return client.patch(path, json.dumps(body), content_type="application/json",
                                **headers)

    return Api()


def _stored(name: str) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT legacy_secrets, webhook_secrets FROM orchestrator_target "
                       "WHERE name = %s", [name])
        return cursor.fetchone()


def test_a_created_target_shows_fingerprints_and_stores_its_secrets_encrypted(api):
    legacy, webhook = generate_legacy_secret(), generate_webhook_secret()
    response = api.post(TARGETS, {
        "name": "billing", "url": "https://billing.example/internal/milestones/ingest",
        "signingSecret": legacy, "webhookSecret": webhook, "retrySchedule": [1, 30, 600],
        "timeoutSeconds": 5, "supportsBatch": True})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["signingSecretFingerprints"] == [f"…{legacy[-4:]}"]
    assert body["webhookSecretFingerprints"] == [f"…{webhook[-4:]}"]
    assert body["retrySchedule"] == [1, 30, 600] and body["timeoutSeconds"] == 5
    assert body["active"] is True and body["paused"] is False and body["due"] == 0
    assert body["lastStatus"] is None and body["successRate24h"] is None
    assert legacy not in response.content.decode() and webhook not in response.content.decode()
    raw_legacy, raw_webhook = _stored("billing")
    assert legacy not in raw_legacy and raw_legacy.startswith("gAAAAA")
    assert webhook not in raw_webhook and raw_webhook.startswith("gAAAAA")
    assert Target.objects.get(name="billing").legacy_secret_list() == [legacy]
    listed = api.get(TARGETS).json()["items"]
    assert [t["name"] for t in listed] == ["billing"]
    assert legacy not in api.get(f"{TARGETS}/billing").content.decode()


def test_a_target_shows_its_health_once_attempts_were_made(api):
    TargetFactory(name="answering", retry_schedule="0")
    milestone_emit(event=MilestoneEventFactory(), targets=[Target.objects.get(name="answering")])
    deliveries_run(transport=FakeTransport(default=TransportResponse(200, b'{"ok":true}')))
    body = api.get(f"{TARGETS}/answering").json()
    assert body["lastStatus"] == "delivered" and body["successRate24h"] == 1.0
    assert body["lastAttemptAtUtc"].endswith("Z") and body["due"] == 0


def test_each_change_is_an_event_naming_the_fields_and_never_a_secret(api):
    legacy = generate_legacy_secret()
    api.post(TARGETS, {"name": "audit", "url": "https://a.example/in", "signingSecret": legacy})
    api.patch(f"{TARGETS}/audit", {"active": False})
    events = list(Event.objects.filter(stream_id="outbox-target-audit").order_by("position"))
    assert [(e.data["change"], e.data["fields"]) for e in events] == [
        ("created", ["url", "legacy_secrets"]), ("changed", ["is_active"])]
    assert events[0].data["legacy_secretsFingerprints"] == [f"…{legacy[-4:]}"]
    assert all(legacy not in json.dumps(e.data) for e in events)


@pytest.mark.parametrize(("body", "field"), [
    ({"timeoutSeconds": -1}, "timeoutSeconds"),
    ({"retrySchedule": ["soon"]}, "retrySchedule"),
    ({"retrySchedule": [-5]}, "retrySchedule"),
    ({"url": "ftp://files.example/in"}, "url"),
    ({"webhookSecret": "whsec_not base64!"}, "webhookSecret"),
    ({"signingSecret": "short"}, "signingSecret"),
    ({"active": "perhaps"}, "active"),
])
def test_a_bad_setting_is_refused_naming_it_and_changes_nothing(api, body, field):
    TargetFactory(name="steady", timeout_s=2.0)
    response = api.patch(f"{TARGETS}/steady", body)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Target.objects.get(name="steady").timeout_s == 2.0


def test_a_second_target_of_one_name_is_a_conflict_and_unknown_names_are_404(api):
    assert api.post(TARGETS, {"name": "twice", "url": "https://t.example/in"}).status_code == 201
    again = api.post(TARGETS, {"name": "twice", "url": "https://u.example/in"})
    assert again.status_code == 409 and "twice" in again.json()["reason"]
    assert api.post(TARGETS, {"url": "https://t.example/in"}).status_code == 400
    assert api.get(f"{TARGETS}/nobody").status_code == 404
    assert api.patch(f"{TARGETS}/nobody", {"active": False}).status_code == 404
    assert api.patch(f"{TARGETS}/twice", {"name": "renamed"}).status_code == 400


def test_rotating_puts_the_new_secret_first_to_sign_and_keeps_the_old_ones_after_it(api):
    old, new = generate_legacy_secret(), generate_legacy_secret()
    TargetFactory(name="rotating", legacy_secrets=old)
    response = api.post(f"{TARGETS}/rotating/rotate-secret", {"signingSecret": new})
    assert response.status_code == 200
    assert response.json()["signingSecretFingerprints"] == [f"…{new[-4:]}", f"…{old[-4:]}"]
    assert Target.objects.get(name="rotating").legacy_secret_list() == [new, old]
    # Removing the old one is a change that names the secrets to keep.
    api.patch(f"{TARGETS}/rotating", {"signingSecret": new})
    assert Target.objects.get(name="rotating").legacy_secret_list() == [new]
    assert api.post(f"{TARGETS}/rotating/rotate-secret", {}).status_code == 400


def test_pause_and_resume_need_a_reason(api):
    TargetFactory(name="held")
    assert api.post(f"{TARGETS}/held/pause", {}).status_code == 400
    paused = api.post(f"{TARGETS}/held/pause", {"reason": "receiver migrating"}).json()
    assert paused["paused"] is True and paused["pausedReason"] == "receiver migrating"
    resumed = api.post(f"{TARGETS}/held/resume", {"reason": "migrated"}).json()
    assert resumed["paused"] is False


def test_targets_are_for_operators_only(client):
    assert client.get(TARGETS).status_code == 401
    user = get_user_model().objects.create_user("viewer", password="pw")
    token = Token.objects.create(user=user).key
    assert client.get(TARGETS, HTTP_AUTHORIZATION=f"Token {token}").status_code == 403


def test_rotating_the_encryption_key_reencrypts_every_secret(settings):
    legacy = generate_legacy_secret()
    TargetFactory(name="kept", legacy_secrets=legacy)
    before, _ = _stored("kept")
    old_key, new_key = settings.CLAWDBOT_ENCRYPTION_KEY, encryption.generate_key()
    settings.CLAWDBOT_ENCRYPTION_KEY = f"{new_key},{old_key}"
    call_command("rotate_encryption_key")
    after, _ = _stored("kept")
    assert after != before
    settings.CLAWDBOT_ENCRYPTION_KEY = new_key  # the old key removed: still readable
    assert Target.objects.get(name="kept").legacy_secret_list() == [legacy]
    settings.CLAWDBOT_ENCRYPTION_KEY = old_key  # only the removed key: a clear error
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        Target.objects.get(name="kept")
