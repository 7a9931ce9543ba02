"""Backfill and replay a chunk at a time, then the backlog they create drains in batches."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from clawdbot.eventstore import projections
from orchestrator_app.models import Delivery, EmittedMilestone, Status
from orchestrator_app.services import batch
from orchestrator_app.services.delivery import deliveries_run
from orchestrator_app.services.replay import backfill_key, milestone_backfill
from orchestrator_app.transport import KeepAliveTransport
from tests.factories import MilestoneEventFactory
from tests.orchestrator.factories import TargetFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_refusals():
    batch.batch_refusals_forget()


def _line(milestone_id: str, **event: object) -> str:
    return json.dumps({"sentAtUtc": "2026-02-28T12:00:00.000Z",
                       "event": MilestoneEventFactory(milestoneId=milestone_id, **event)})


def _backfill(path, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("backfill_milestones", str(path), *args, stdout=out, stderr=err)
    except CommandError as exc:
        err.write(f"CommandError: {exc}\n")
    return out.getvalue(), err.getvalue()


def test_chunks_answer_as_one_line_at_a_time_and_project_as_a_rebuild(tmp_path):
    TargetFactory(name="a")
    TargetFactory(name="b")
    milestone_backfill(line=json.loads(_line("m.before")), actor="ops")
    lines = [_line("m.1"), _line("m.before"), "not json", _line("m.2"),
             _line("m.1", claim="again, in the same chunk"), _line("m.3", riskStatus="fine"),
             _line("m.4"), _line("m.2", claim="again, in a later chunk"), _line("m.5")]
    log = tmp_path / "ref.jsonl"
    log.write_text("\n".join(lines) + "\n")
    out, err = _backfill(log, "--chunk", "3")
    assert "4 new milestone(s) emitted, 3 skipped, 2 invalid line(s)" in out
    assert "9/9" in out and "100%" in out, "a progress bar"
    problems = err.splitlines()
    assert problems[0] == "line 3: not JSON: Expecting value at column 1"
    assert problems[1].startswith("line 6: event.riskStatus: ")
    emitted = dict(EmittedMilestone.objects.values_list("milestone_id", "idempotency_key"))
    assert emitted == {m: backfill_key(m) for m in
                       ["m.before", "m.1", "m.2", "m.4", "m.5"]}
    assert EmittedMilestone.objects.get(milestone_id="m.1").event["claim"] != \
        "again, in the same chunk"
    assert Delivery.objects.filter(status=Status.PENDING).count() == 10  # 5 × 2 targets
    outbox = projections.get("outbox")
    live = projections.table_snapshot(outbox)
    projections.rebuild("outbox")
    assert projections.table_snapshot(outbox) == live
    again, _ = _backfill(log)
    assert "0 new milestone(s) emitted, 7 skipped, 2 invalid line(s)" in again


def test_a_bad_chunk_size_is_refused(tmp_path):
    log = tmp_path / "ref.jsonl"
    log.write_text(_line("m.1") + "\n")
    _, err = _backfill(log, "--chunk", "0")
    assert "CommandError: --chunk must be 1 or more, not 0" in err


@pytest.mark.slow
def test_a_backfill_and_a_replay_drain_in_batches_over_http(receiver, tmp_path):
    TargetFactory(name="r", url=receiver.url, supports_batch=True)
    log = tmp_path / "ref.jsonl"
    log.write_text("".join(_line(f"m.{n}") + "\n" for n in range(40)))
    assert "40 new milestone(s) emitted" in _backfill(log)[0]
    http = KeepAliveTransport()
    assert {d.status for d in deliveries_run(transport=http)} == {Status.DELIVERED}
    entry, = receiver.log()
    assert entry["path"].endswith("/batch") and len(entry["keys"]) == 40

    out = io.StringIO()
    call_command("replay_milestones", stdout=out, stderr=io.StringIO())
    assert "40 milestone(s) replayed to r, 40 delivery(ies): 40 requeued" in out.getvalue()
    assert {d.status for d in deliveries_run(transport=http)} == {Status.DUPLICATE}
    assert [len(e["keys"]) for e in receiver.log()] == [40, 40]
