from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from orchestrator_app.models import Delivery, EmittedMilestone, Status
from orchestrator_app.services.delivery import deliveries_run
from orchestrator_app.services.emit import milestone_emit
from orchestrator_app.transport import TransportResponse
from tests.factories import MilestoneEventFactory
from tests.orchestrator.factories import TargetFactory

pytestmark = pytest.mark.django_db


def _call(*args: str, stdin: str | None = None) -> str:
    out = io.StringIO()
    if stdin is not None:
        import sys

        old, sys.stdin = sys.stdin, io.StringIO(stdin)
        try:
            call_command(*args, stdout=out, stderr=io.StringIO())
        finally:
            sys.stdin = old
    else:
        call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _dead(transport, count: int = 2) -> list[Delivery]:
    TargetFactory(name="t")
    for _ in range(count):
        milestone_emit(event=MilestoneEventFactory())
    transport.default = TransportResponse(400)
    return deliveries_run(transport=transport)


def test_emit_milestone_reads_a_file(tmp_path):
    TargetFactory(name="t")
    path = tmp_path / "m.json"
    path.write_text(json.dumps(MilestoneEventFactory(milestoneId="from.file")))
    assert "emitted from.file" in _call("emit_milestone", str(path))
    assert EmittedMilestone.objects.get().milestone_id == "from.file"


def test_emit_milestone_reads_stdin_with_context():
    TargetFactory(name="t")
    body = {"event": MilestoneEventFactory(), "context": {"sourceRunId": "r-1"}}
    _call("emit_milestone", "-", stdin=json.dumps(body))
    assert EmittedMilestone.objects.get().context == {"sourceRunId": "r-1"}


def test_emit_milestone_reports_field_errors():
    with pytest.raises(CommandError, match="evidence"):
        _call("emit_milestone", "-", stdin=json.dumps(MilestoneEventFactory(evidence=[])))


def test_requeue_dead_letters_by_key(transport):
    first, second = _dead(transport)
    out = _call("requeue_dead_letters", "--key", first.idempotency_key)
    assert "1 dead letter(s) requeued" in out
    assert Delivery.objects.get(pk=first.pk).status == Status.PENDING
    assert Delivery.objects.get(pk=second.pk).status == Status.REJECTED


def test_requeue_dead_letters_dry_run_changes_nothing(transport):
    _dead(transport)
    assert "2 dead letter(s) would be requeued" in _call("requeue_dead_letters", "--all",
                                                         "--dry-run")
    assert Delivery.objects.filter(status=Status.REJECTED).count() == 2


def test_requeue_dead_letters_all_for_a_target(transport):
    _dead(transport)
    assert "0 dead letter(s)" in _call("requeue_dead_letters", "--all", "--target", "other")
    assert "2 dead letter(s) requeued" in _call("requeue_dead_letters", "--all",
                                                "--target", "t")


def test_replay_requeues_with_the_original_key_and_queues_new_targets(transport):
    TargetFactory(name="t")
    key = milestone_emit(event=MilestoneEventFactory()).idempotency_key
    deliveries_run(transport=transport)
    TargetFactory(name="late")
    out = _call("replay_milestones", "--since", "2000-01-01T00:00:00Z")
    assert "1 requeued, 1 newly queued" in out
    assert set(Delivery.objects.filter(idempotency_key=key).values_list("target", "status")) == {
        ("t", Status.PENDING), ("late", Status.PENDING)}


def test_replay_dry_run_and_until_filter(transport):
    TargetFactory(name="t")
    milestone_emit(event=MilestoneEventFactory())
    assert "0 milestone(s)" in _call("replay_milestones", "--until", "2000-01-01T00:00:00Z")
    assert "1 milestone(s) would be replayed" in _call("replay_milestones", "--dry-run")


def test_backfill_is_idempotent_by_milestone_id(tmp_path):
    TargetFactory(name="t")
    log = tmp_path / "ref.jsonl"
    lines = [{"sentAtUtc": "2026-02-28T12:00:00.000Z", "event": MilestoneEventFactory()}
             for _ in range(6)]
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert "6 new milestone(s) emitted, 0 skipped" in _call("backfill_milestones", str(log))
    assert "0 new milestone(s) emitted, 6 skipped" in _call("backfill_milestones", str(log))
    assert EmittedMilestone.objects.filter(sent_at_utc="2026-02-28T12:00:00.000Z").count() == 6


def test_backfill_reports_invalid_lines(tmp_path):
    log = tmp_path / "ref.jsonl"
    log.write_text('not json\n{"event": {"milestoneId": "x"}}\n')
    assert "0 new milestone(s) emitted, 0 skipped, 2 invalid line(s)" in _call(
        "backfill_milestones", str(log))


def test_deliver_pending_delivers_what_is_due(monkeypatch):
    from orchestrator_app import transport as transport_module
    from tests.orchestrator.conftest import FakeTransport

    monkeypatch.setattr(transport_module, "_default", FakeTransport())
    TargetFactory(name="t")
    milestone_emit(event=MilestoneEventFactory())
    assert "1 attempt(s): 1 delivered" in _call("deliver_pending")


def test_seed_emits_samples_only_into_an_empty_outbox():
    TargetFactory(name="t")
    assert "6 sample milestone(s) emitted" in _call("seed_milestones")
    assert "nothing seeded" in _call("seed_milestones")
    assert EmittedMilestone.objects.count() == 6


def test_seed_waits_for_the_server_then_emits(live_server, settings):
    host, port = live_server.url.removeprefix("http://").rsplit(":", 1)
    settings.HOST, settings.PORT = host, int(port)
    TargetFactory(name="t")
    assert "6 sample milestone(s) emitted" in _call("seed_milestones", "--wait-for-server",
                                                    "--timeout", "10")


@pytest.mark.parametrize("context", ["run-7", ["run-7"]])
def test_emit_milestone_with_a_context_that_is_not_an_object_names_it(context):
    data = {"event": MilestoneEventFactory(), "context": context}
    with pytest.raises(CommandError, match="context: must be an object"):
        _call("emit_milestone", "-", stdin=json.dumps(data))
    assert not EmittedMilestone.objects.exists()


def test_deliver_pending_refuses_a_negative_limit():
    with pytest.raises(CommandError, match="--limit"):
        _call("deliver_pending", "--limit", "-1")


def test_backfill_of_a_file_that_is_not_utf8_names_the_problem(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"event": "\xff"}\n')
    with pytest.raises(CommandError, match="utf-8"):
        _call("backfill_milestones", str(path))
