"""The pipeline's own delivery-health milestones, in process against real PostgreSQL."""

from __future__ import annotations

import pytest

from orchestrator_app.models import Delivery, EmittedMilestone, Status
from orchestrator_app.services.delivery import deliveries_run
from orchestrator_app.services.emit import milestone_emit
from orchestrator_app.services.pipeline_milestones import PREFIX, HealthWatch
from orchestrator_app.services.triage import target_pause, target_resume
from orchestrator_app.transport import TransportResponse
from tests.factories import MilestoneEventFactory
from tests.orchestrator.conftest import FakeTransport
from tests.orchestrator.factories import TargetFactory

pytestmark = pytest.mark.django_db
WINDOW = 300.0
DOWN = TransportResponse(503, b"down")


@pytest.fixture(autouse=True)
def _window(settings):
    settings.CLAWDBOT_PIPELINE_MILESTONE_WINDOW_S = WINDOW


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000 * WINDOW

    def __call__(self) -> float:
        return self.now

    def next_window(self) -> None:
        self.now += WINDOW


@pytest.fixture
def watch():
    made = HealthWatch(clock=Clock())
    made.step()  # the starting look at every target
    return made


def _deliver_all(transport: FakeTransport) -> None:
    while deliveries_run(transport=transport):
        pass


def _reports() -> list[dict]:
    return [m.event for m in EmittedMilestone.objects.filter(milestone_id__startswith=PREFIX)
            .order_by("position")]


def test_a_dead_lettered_target_gets_one_at_risk_milestone_linking_the_deliveries(watch):
    TargetFactory(name="flaky")
    key = milestone_emit(event=MilestoneEventFactory()).idempotency_key
    _deliver_all(FakeTransport(default=DOWN))
    watch.step()
    report, = _reports()
    assert (report["milestoneId"], report["scope"], report["riskStatus"]) == (
        "pipeline.delivery.flaky", "delivery", "at-risk")
    dead = Delivery.objects.get(idempotency_key=key)
    assert dead.status == Status.DEAD_LETTER
    assert str(dead.pk) in [e.get("ref") for e in report["evidence"]]


def test_a_dead_target_does_not_cascade(watch):
    TargetFactory(name="flaky")
    milestone_emit(event=MilestoneEventFactory())
    down = FakeTransport(default=DOWN)
    for _ in range(3):  # the at-risk milestone itself dead-letters on the same target
        _deliver_all(down)
        watch.step()
        watch.clock.next_window()
    assert [r["riskStatus"] for r in _reports()] == ["at-risk"]
    assert Delivery.objects.filter(milestone_id__startswith=PREFIX,
                                   status=Status.DEAD_LETTER).count() == 1


def test_recovery_gives_a_completed_milestone(watch):
    TargetFactory(name="flaky")
    milestone_emit(event=MilestoneEventFactory())
    _deliver_all(FakeTransport(default=DOWN))
    watch.step()
    watch.clock.next_window()
    milestone_emit(event=MilestoneEventFactory())
    _deliver_all(FakeTransport())
    watch.step()
    assert [r["riskStatus"] for r in _reports()] == ["at-risk", "completed"]


def test_a_flapping_target_gives_one_milestone_per_window_and_its_final_state_later(watch):
    TargetFactory(name="flaky")
    for _ in range(3):  # dies and recovers three times within one window
        milestone_emit(event=MilestoneEventFactory())
        _deliver_all(FakeTransport(default=DOWN))
        watch.step()
        milestone_emit(event=MilestoneEventFactory())
        _deliver_all(FakeTransport())
        watch.step()
    assert [r["riskStatus"] for r in _reports()] == ["at-risk"]
    watch.clock.next_window()
    watch.step()  # the state it settled in (healthy) is reported in the next window
    assert [r["riskStatus"] for r in _reports()] == ["at-risk", "completed"]


def test_a_paused_target_is_at_risk_until_resumed(watch):
    TargetFactory(name="flaky")
    target_pause(name="flaky", actor="ops", reason="receiver maintenance")
    watch.step()
    watch.clock.next_window()
    target_resume(name="flaky", actor="ops", reason="maintenance over")
    watch.step()
    first, second = _reports()
    assert first["riskStatus"] == "at-risk"
    assert "receiver maintenance" in first["evidence"][0]["summary"]
    assert second["riskStatus"] == "completed"


def test_nothing_is_reported_for_healthy_targets(watch):
    TargetFactory(name="fine")
    milestone_emit(event=MilestoneEventFactory())
    _deliver_all(FakeTransport())
    watch.step()
    assert _reports() == []
