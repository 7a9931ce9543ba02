"""Both sides of the wire contract agree: our outbox delivers to our ingest over real HTTP.

The orchestrator side (emit, sign, POST) and the feed side (verify, validate, dedupe,
store) meet only at SPEC §3–4, as they do with the TypeScript implementation. Each scheme
alone must be enough, the stored event must be the emitted one to the value, a replay is a
duplicate, and a wrong secret is rejected by the receiver and lands in its dead-letter.
"""

from __future__ import annotations

import httpx
import pytest

from feed_app.models import DeadLetter
from orchestrator_app.models import Delivery, Status, Target
from orchestrator_app.services.delivery import deliveries_run
from orchestrator_app.services.emit import milestone_emit
from orchestrator_app.services.replay import milestone_replay
from orchestrator_app.transport import KeepAliveTransport
from tests.factories import MilestoneEventFactory
from tests.liveserver import asgi_server
from tests.orchestrator.factories import TargetFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Content that stresses the canonical form: astral characters, U+2028, escapes, numbers
# JavaScript prints its own way, and an unknown field (covered by the signature too).
AWKWARD = {
    "claim": 'Déploiement réussi 🚀 — 部署成功 \u2028 "quoted" \\ back\tslash',
    "extra": {"ratio": 0.1, "big": 1e21, "tiny": 1e-7, "int": 12, "nested": [1.5, None, True]},
}


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    # django_db_setup first: the server must be started on the test database.
    with django_db_blocker.unblock(), asgi_server() as url:
        yield url


def _deliver(server: str, **target: object) -> tuple[Delivery, dict]:
    # Empty secrets: the target signs with the settings' secrets, which the ingest verifies.
    TargetFactory(name="feed", url=f"{server}/internal/milestones/ingest",
                  **{"legacy_secrets": "", "webhook_secrets": "", **target})
    event = MilestoneEventFactory(**AWKWARD)
    key = milestone_emit(event=event).idempotency_key
    deliveries_run(transport=KeepAliveTransport())
    return Delivery.objects.get(idempotency_key=key, target="feed"), event


@pytest.mark.parametrize(
    "schemes",
    [{"sign_webhook": False}, {"sign_legacy": False}, {}],
    ids=["legacy-only", "standard-webhooks-only", "both"],
)
def test_outbox_delivery_is_accepted_and_stored_as_emitted(server, schemes):
    delivery, event = _deliver(server, **schemes)

    assert (delivery.status, delivery.last_status_code) == (Status.DELIVERED, 200)
    stored = httpx.get(f"{server}/api/milestones/{delivery.idempotency_key}", timeout=5).json()
    assert {k: stored["item"][k] for k in event} == event


def test_replayed_milestone_comes_back_duplicate(server):
    delivery, _ = _deliver(server)
    milestone_replay(idempotency_key=delivery.idempotency_key,
                     targets=[Target.objects.get(name="feed")], actor="ops",
                     reason="contract test")
    deliveries_run(transport=KeepAliveTransport())

    delivery.refresh_from_db()
    assert delivery.status == Status.DUPLICATE
    latest = httpx.get(f"{server}/api/milestones/latest", timeout=5).json()["items"]
    assert [i["idempotencyKey"] for i in latest].count(delivery.idempotency_key) == 1


def test_wrong_secret_is_rejected_and_dead_lettered_by_the_ingest(server):
    delivery, _ = _deliver(server, sign_webhook=False, legacy_secrets="not-the-secret")

    assert (delivery.status, delivery.last_status_code) == (Status.REJECTED, 401)
    rejection = DeadLetter.objects.get(idempotency_key=delivery.idempotency_key)
    assert rejection.reason_code == "signature_invalid"
