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
    TargetFactory(name="other")
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


def _call_err(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        err.write(f"CommandError: {exc}\n")
    return out.getvalue(), err.getvalue()


def test_backfill_reports_invalid_lines_readably_and_fails(tmp_path):
    TargetFactory(name="t")
    log = tmp_path / "ref.jsonl"
    good = {"sentAtUtc": "2026-02-28T12:00:00.000Z", "event": MilestoneEventFactory()}
    log.write_text('not json\n{"event": {"milestoneId": "x"}}\n' + json.dumps(good) + "\n"
                   '{"sentAtUtc": "yesterday", "event": {}}\n[1]\n')
    out, err = _call_err("backfill_milestones", str(log))
    assert "1 new milestone(s) emitted, 0 skipped, 4 invalid line(s)" in out
    lines = err.splitlines()
    assert lines[0] == "line 1: not JSON: Expecting value at column 1"
    assert lines[1].startswith("line 2: event.timestampUtc: This field is required.")
    assert "event.claim: This field is required." in lines[1]
    assert lines[2].startswith("line 4: sentAtUtc: Must be an ISO-8601 date-time")
    assert lines[3] == "line 5: (root): Must be a JSON object."
    assert "{" not in err and "[" not in err  # no Python reprs of dicts or lists
    assert lines[-1].startswith("CommandError: 4 of 5 line(s) invalid")
    assert EmittedMilestone.objects.count() == 1


def test_backfill_exits_non_zero_on_an_invalid_line(tmp_path, capsys):
    from django.core.management import ManagementUtility

    log = tmp_path / "ref.jsonl"
    log.write_text('{"event": {"milestoneId": "x"}}\n')
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "backfill_milestones", str(log)]).execute()
    assert exited.value.code == 1
    assert "line 1: event.timestampUtc: This field is required." in capsys.readouterr().err


def test_backfill_accepts_plain_events_beside_log_lines(tmp_path):
    TargetFactory(name="t")
    log = tmp_path / "mixed.jsonl"
    plain = MilestoneEventFactory(milestoneId="plain.one")
    logged = {"sentAtUtc": "2026-02-28T12:00:00.000Z",
              "event": MilestoneEventFactory(milestoneId="logged.one")}
    log.write_text(json.dumps(plain) + "\n" + json.dumps(logged) + "\n")
    assert "2 new milestone(s) emitted, 0 skipped" in _call("backfill_milestones", str(log))
    assert set(EmittedMilestone.objects.values_list("milestone_id", flat=True)) == {
        "plain.one", "logged.one"}


def test_backfill_splits_lines_on_newline_only(tmp_path):
    """JSON.stringify writes U+2028, U+2029 and U+0085 raw; they are not line breaks."""
    TargetFactory(name="t")
    claims = ["a\u2028b", "c\u2029d", "e\x85f", "\u2028 g \u2029"]
    events = [MilestoneEventFactory(claim=claim) for claim in claims]
    log = tmp_path / "ref.jsonl"
    log.write_text("".join(json.dumps({"sentAtUtc": "2026-02-28T12:00:00.000Z", "event": e},
                                      ensure_ascii=False) + "\n" for e in events),
                   encoding="utf-8")
    assert "\u2028" in log.read_text(encoding="utf-8")  # written raw, as the reference does
    assert "4 new milestone(s) emitted, 0 skipped" in _call("backfill_milestones", str(log))
    assert sorted(EmittedMilestone.objects.values_list("event__claim", flat=True)) == sorted(
        claims)


def test_backfill_reads_the_log_our_own_emitter_writes(tmp_path, settings):
    from pathlib import Path

    from orchestrator_app.services.milestone_log import log_line

    TargetFactory(name="t")
    settings.MILESTONE_LOG_PATH = Path(tmp_path / "ours.jsonl")
    with open(settings.MILESTONE_LOG_PATH, "ab") as log:
        for n, claim in enumerate(["x\u2028y", "p\x85q"]):
            log.write(log_line(sent_at_utc="2026-02-28T12:00:00.000Z",
                               event=MilestoneEventFactory(milestoneId=f"ours.{n}",
                                                           claim=claim)))
    assert "\u2028" in settings.MILESTONE_LOG_PATH.read_text(encoding="utf-8")
    assert "2 new milestone(s) emitted, 0 skipped" in _call(
        "backfill_milestones", str(settings.MILESTONE_LOG_PATH))
    assert EmittedMilestone.objects.get(milestone_id="ours.0").event["claim"] == "x\u2028y"
    assert EmittedMilestone.objects.get(milestone_id="ours.1").event["claim"] == "p\x85q"


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


def test_emit_milestone_on_empty_stdin_says_it_is_empty():
    with pytest.raises(CommandError) as caught:
        _call("emit_milestone", "-", stdin="  \n")
    assert str(caught.value) == ('stdin is empty: expected a milestone event, or '
                                 '{"event": …, "context": …} as JSON')


def test_emit_milestone_on_broken_json_names_where():
    with pytest.raises(CommandError, match=r"^stdin is not JSON: Expecting .* at column \d+$"):
        _call("emit_milestone", "-", stdin='{"milestoneId": ')


@pytest.mark.parametrize(("body", "kind"), [("[]", "an array"), ('"x"', "a string"),
                                            ("3", "a number"), ("null", "null")])
def test_emit_milestone_on_a_value_that_is_not_an_object_names_it(body, kind):
    with pytest.raises(CommandError) as caught:
        _call("emit_milestone", "-", stdin=body)
    assert str(caught.value).startswith(f"stdin holds {kind}: expected a milestone event")
    assert not EmittedMilestone.objects.exists()


def test_emit_milestone_on_a_missing_file_names_it(tmp_path):
    with pytest.raises(CommandError, match="cannot read .*nothere.json"):
        _call("emit_milestone", str(tmp_path / "nothere.json"))


@pytest.mark.parametrize("command", ["emit_milestone", "replay_milestones",
                                     "requeue_dead_letters", "backfill_milestones",
                                     "deliver_pending", "seed_milestones"])
def test_every_option_of_the_commands_has_help(command):
    from django.core.management import load_command_class

    parser = load_command_class("orchestrator_app", command).create_parser("manage.py", command)
    own = [a for a in parser._actions if not set(a.option_strings) & {
        "-h", "--help", "--version", "-v", "--verbosity", "--settings", "--pythonpath",
        "--traceback", "--no-color", "--force-color", "--skip-checks"}]
    assert own
    assert [a.dest for a in own if not a.help] == []


def test_replay_dry_run_counts_what_would_happen(transport):
    TargetFactory(name="t")
    keys = [milestone_emit(event=MilestoneEventFactory()).idempotency_key for _ in range(3)]
    deliveries_run(transport=transport)  # all delivered: a replay requeues them
    milestone_emit(event=MilestoneEventFactory())  # still pending: already in flight
    TargetFactory(name="late")  # no delivery yet: newly queued
    out = _call("replay_milestones", "--dry-run")
    assert ("4 milestone(s) would be replayed to late, t, 8 delivery(ies): "
            "3 requeued, 4 newly queued, 1 already in flight") in out.replace("t, late", "late, t")
    assert sorted(Delivery.objects.values_list("status", flat=True)) == sorted(
        [Status.DELIVERED] * 3 + [Status.PENDING])
    real = _call("replay_milestones")
    assert "3 requeued, 4 newly queued, 1 already in flight" in real
    assert Delivery.objects.filter(idempotency_key__in=keys, status=Status.PENDING).count() == 6


@pytest.mark.parametrize("command", [("replay_milestones",),
                                     ("requeue_dead_letters", "--all")])
def test_an_unknown_target_is_refused_by_every_command(transport, command):
    _dead(transport)
    with pytest.raises(CommandError) as caught:
        _call(*command, "--target", "nosuch")
    assert str(caught.value) == "no target named 'nosuch' (known: t)"
    assert Delivery.objects.filter(status=Status.REJECTED).count() == 2


def test_requeue_dry_run_cuts_long_errors_at_a_word(transport):
    _dead(transport, count=1)
    words = "the receiver refused the envelope because its schema changed " * 3
    Delivery.objects.update(last_error=f"HTTP 400: {words}")
    out = _call("requeue_dead_letters", "--all", "--dry-run")
    shown = out.splitlines()[0].split("(rejected: ", 1)[1].removesuffix(")")
    assert shown.endswith("…")
    assert f"HTTP 400: {words}".startswith(shown.removesuffix("…"))
    assert shown.removesuffix("…").split()[-1] in words.split()
    assert len(shown) <= 80


def test_shorten_keeps_short_text_and_cuts_long_text_between_words():
    from orchestrator_app.management.cli import shorten

    assert shorten("HTTP 400:\n  bad   body") == "HTTP 400: bad body"
    assert shorten("alpha beta gamma", 12) == "alpha beta…"
    assert shorten("x" * 30, 10) == "x" * 9 + "…"
