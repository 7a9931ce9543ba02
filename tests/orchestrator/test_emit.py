from __future__ import annotations

import json
import re

import pytest

from clawdbot.eventstore import store
from orchestrator_app import events as ev
from orchestrator_app.exceptions import MilestoneRejected
from orchestrator_app.models import Delivery, EmittedMilestone, Status, Target
from orchestrator_app.services.emit import milestone_emit
from tests.factories import MilestoneEventFactory
from tests.orchestrator.factories import TargetFactory

pytestmark = pytest.mark.django_db


def test_emit_records_the_milestone_and_one_pending_delivery_per_active_target():
    TargetFactory(name="a")
    TargetFactory(name="b")
    result = milestone_emit(event=MilestoneEventFactory())
    assert sorted(d.target for d in result.deliveries) == ["a", "b"]
    rows = Delivery.objects.filter(idempotency_key=result.idempotency_key)
    assert {(d.target, d.status, d.attempts) for d in rows} == {
        ("a", Status.PENDING, 0), ("b", Status.PENDING, 0)}
    types = [e.type for e in store.read_stream(ev.milestone_stream(result.idempotency_key))]
    assert types == [ev.MILESTONE_EMITTED, ev.DELIVERY_QUEUED, ev.DELIVERY_QUEUED]


def test_emit_skips_inactive_targets():
    TargetFactory(name="on")
    TargetFactory(name="off", is_active=False)
    result = milestone_emit(event=MilestoneEventFactory())
    assert [d.target for d in result.deliveries] == ["on"]


def test_emit_uses_a_fresh_128_bit_hex_key_each_time():
    TargetFactory()
    keys = {milestone_emit(event=MilestoneEventFactory()).idempotency_key for _ in range(3)}
    assert len(keys) == 3
    assert all(re.fullmatch(r"[0-9a-f]{32}", k) for k in keys)


def test_invalid_event_names_the_fields_and_records_nothing():
    TargetFactory()
    before = store.count()
    with pytest.raises(MilestoneRejected) as caught:
        milestone_emit(event=MilestoneEventFactory(evidence=[], riskStatus="fine"))
    assert set(caught.value.errors) >= {"evidence", "riskStatus"}
    assert store.count() == before
    assert not EmittedMilestone.objects.exists()


def test_emit_normalises_offset_timestamps_to_z():
    TargetFactory()
    result = milestone_emit(event=MilestoneEventFactory(timestampUtc="2026-02-28T14:34:56+02:00"))
    assert result.event["timestampUtc"] == "2026-02-28T12:34:56.000Z"
    assert result.sent_at_utc.endswith("Z")


def test_emit_keeps_unknown_fields_and_the_context():
    TargetFactory()
    result = milestone_emit(event=MilestoneEventFactory(extra={"x": 1}),
                            context={"sourceTaskId": "t-1", "actor": "ops"})
    stored = EmittedMilestone.objects.get(pk=result.idempotency_key)
    assert stored.event["extra"] == {"x": 1}
    assert stored.context == {"sourceTaskId": "t-1", "actor": "ops"}


def test_log_line_is_appended_after_commit_in_the_reference_format(
        settings, django_capture_on_commit_callbacks):
    TargetFactory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = milestone_emit(event=MilestoneEventFactory())
    assert not settings.MILESTONE_LOG_PATH.exists()
    for callback in callbacks:
        callback()
    line = json.loads(settings.MILESTONE_LOG_PATH.read_text().splitlines()[0])
    assert line == {"sentAtUtc": result.sent_at_utc, "event": result.event}


def test_default_target_comes_from_the_settings(settings):
    settings.MILESTONE_INGEST_URL = "http://127.0.0.1:8000/internal/milestones/ingest"
    result = milestone_emit(event=MilestoneEventFactory())
    assert [d.target for d in result.deliveries] == ["default"]
    default = Target.objects.get(name="default")
    assert default.resolved_url() == settings.MILESTONE_INGEST_URL
    assert default.legacy_secret_list()[0] == settings.MILESTONE_SIGNING_SECRET.split(",")[0]


def test_event_too_deep_to_sign_is_refused_at_emit_naming_the_field():
    # It would be accepted here, then fail to sign on every attempt until dead-letter.
    TargetFactory()
    deep: object = []
    for _ in range(300):
        deep = [deep]
    with pytest.raises(MilestoneRejected) as caught:
        milestone_emit(event=MilestoneEventFactory(extra=deep))
    assert list(caught.value.errors) == ["extra"]
    assert not EmittedMilestone.objects.exists()
