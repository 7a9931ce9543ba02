"""Milestone and envelope validation: every rule names its field."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from clawdbot.contract import (
    EVIDENCE_TYPES,
    RISK_STATUSES,
    SOURCES,
    MilestoneInvalid,
    find_unstorable,
    parse_json,
    validate_envelope,
    validate_milestone,
)
from clawdbot.contract.storable import describe_unstorable

EVENT: dict[str, Any] = {
    "milestoneId": "runtime.validation.example",
    "timestampUtc": "2026-02-28T12:34:56.000Z",
    "scope": "runtime",
    "claim": "Orchestrator started successfully.",
    "evidence": [
        {
            "type": "log",
            "path": "workspace/orchestrator_state.json",
            "summary": "lastStartedAt set in orchestrator state",
            "ref": "optional",
        }
    ],
    "riskStatus": "on-track",
    "nextAction": "Monitor task queue for first incoming tasks.",
    "source": "orchestrator",
}


def event(**changes: Any) -> dict[str, Any]:
    """The SPEC example with top-level fields replaced; a value of ... removes the field."""
    data = copy.deepcopy(EVENT)
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return data


def errors_of(data: Any) -> dict[str, list[str]]:
    with pytest.raises(MilestoneInvalid) as caught:
        validate_milestone(data)
    return caught.value.errors


def envelope(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "idempotencyKey": "6f1c2b7e9a4d4c0f8e3b5a7d9c1e2f30",
        "sentAtUtc": "2026-02-28T12:34:56.000Z",
        "event": event(),
    }
    data.update(changes)
    return data


def test_the_spec_example_is_valid() -> None:
    milestone = validate_milestone(event())

    assert milestone.milestone_id == "runtime.validation.example"
    assert milestone.timestamp == datetime(2026, 2, 28, 12, 34, 56, tzinfo=UTC)
    assert milestone.evidence[0].ref == "optional"
    assert milestone.risk_status == "on-track"


def test_constants_match_the_spec() -> None:
    assert EVIDENCE_TYPES == ("doc", "commit", "issue", "pr", "runbook", "metric", "log")
    assert RISK_STATUSES == ("on-track", "at-risk", "blocked", "completed")
    assert SOURCES == ("orchestrator", "agent", "operator")


def test_source_defaults_to_orchestrator_and_raw_stays_as_sent() -> None:
    data = event(source=...)
    milestone = validate_milestone(data)

    assert milestone.source == "orchestrator"
    assert "source" not in milestone.raw


def test_unknown_extra_fields_are_kept_in_raw() -> None:
    data = event(priority={"level": 3})
    data["evidence"][0]["lines"] = [1, 2]

    assert validate_milestone(data).raw == data


@pytest.mark.parametrize("field", ["milestoneId", "scope", "claim", "nextAction"])
@pytest.mark.parametrize(
    ("value", "message"),
    [(..., "required"), ("", "blank"), (" \t\n", "blank"), (7, "string"), (None, "string")],
)
def test_required_text_fields_must_be_non_blank_strings(
    field: str, value: Any, message: str
) -> None:
    errors = errors_of(event(**{field: value}))

    assert list(errors) == [field]
    assert message in errors[field][0]


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-02-28T12:34:56Z",
        "2026-02-28T12:34:56.1Z",
        "2026-02-28T12:34:56.123456789Z",
        "2026-02-28t12:34:56z",
        "2026-02-28T14:34:56+02:00",
        "2026-02-28T07:04:56-05:30",
    ],
)
def test_timestamps_with_a_zone_are_accepted(stamp: str) -> None:
    moment = validate_milestone(event(timestampUtc=stamp)).timestamp
    assert moment.utcoffset() is not None
    assert moment.replace(microsecond=0) == datetime(2026, 2, 28, 12, 34, 56, tzinfo=UTC)


@pytest.mark.parametrize(
    ("stamp", "message"),
    [
        ("2026-02-28T12:34:56", "time zone"),
        ("2026-02-28T12:34:56.000", "time zone"),
        ("2026-02-28", "date-time"),
        ("12:34:56Z", "date-time"),
        ("2026-02-28 12:34:56Z", "date-time"),
        ("2026-02-28T12:34Z", "date-time"),
        ("2026-02-28T12:34:56+0200", "date-time"),
        ("yesterday", "date-time"),
        ("2026-02-30T12:34:56Z", "real date"),
        ("2026-02-28T24:00:00Z", "real date"),
        ("2026-02-28T12:34:56+24:00", "real date"),
        ("2026-02-28T12:34:56+01:60", "minutes"),
        ("２０２６-02-28T12:34:56Z", "date-time"),  # only ASCII digits
    ],
)
def test_bad_timestamps_are_named(stamp: str, message: str) -> None:
    errors = errors_of(event(timestampUtc=stamp))

    assert list(errors) == ["timestampUtc"]
    assert message in errors["timestampUtc"][0]


def test_evidence_must_hold_at_least_one_item() -> None:
    assert "at least one" in errors_of(event(evidence=[]))["evidence"][0]
    assert "required" in errors_of(event(evidence=...))["evidence"][0]
    assert "list" in errors_of(event(evidence={"type": "log"}))["evidence"][0]


def test_each_evidence_rule_names_its_item_and_field() -> None:
    evidence = [
        {"type": "log", "path": "ok", "summary": "ok"},
        {"type": "screenshot", "path": " ", "summary": 3, "ref": 9},
        "not an object",
        {},
    ]
    errors = errors_of(event(evidence=evidence))

    assert "one of: doc, commit" in errors["evidence[1].type"][0]
    assert "blank" in errors["evidence[1].path"][0]
    assert "string" in errors["evidence[1].summary"][0]
    assert "string" in errors["evidence[1].ref"][0]
    assert "object" in errors["evidence[2]"][0]
    assert {"evidence[3].type", "evidence[3].path", "evidence[3].summary"} <= set(errors)
    assert not any(path.startswith("evidence[0]") for path in errors)


def test_evidence_ref_is_optional_but_not_null() -> None:
    item = {"type": "commit", "path": "src/a.py", "summary": "s"}
    assert validate_milestone(event(evidence=[item])).evidence[0].ref is None
    assert "evidence[0].ref" in errors_of(event(evidence=[{**item, "ref": None}]))


@pytest.mark.parametrize("status", RISK_STATUSES)
def test_every_risk_status_is_accepted(status: str) -> None:
    assert validate_milestone(event(riskStatus=status)).risk_status == status


@pytest.mark.parametrize(("field", "value"), [("riskStatus", "late"), ("source", "robot")])
def test_enumerations_reject_other_values(field: str, value: str) -> None:
    assert "Must be one of" in errors_of(event(**{field: value}))[field][0]


def test_a_missing_risk_status_is_required() -> None:
    assert "required" in errors_of(event(riskStatus=...))["riskStatus"][0]


def test_all_failing_fields_are_reported_together() -> None:
    errors = errors_of(event(scope="", riskStatus="late", evidence=[]))
    assert set(errors) == {"scope", "riskStatus", "evidence"}


@pytest.mark.parametrize("data", [None, [], "event", 3])
def test_a_non_object_event_is_reported_at_the_root(data: Any) -> None:
    assert errors_of(data) == {"": ["Must be a JSON object."]}


def test_the_exception_message_lists_the_fields() -> None:
    with pytest.raises(MilestoneInvalid, match="riskStatus: Must be one of"):
        validate_milestone(event(riskStatus="late"))


# -- content PostgreSQL cannot store ------------------------------------------------------


def test_find_unstorable_names_the_path_of_a_nul() -> None:
    data = event(evidence=[{"type": "log", "path": "p", "summary": "a\x00b"}])
    assert find_unstorable(data) == "evidence[0].summary"
    assert "NUL" in errors_of(data)["evidence[0].summary"][0]


def test_find_unstorable_names_the_path_of_a_lone_surrogate() -> None:
    data = parse_json(rb'{"extra": {"notes": ["fine", "bad \ud800"]}}')
    assert describe_unstorable(data) == (
        "extra.notes[1]",
        "Contains a lone surrogate, which cannot be stored.",
    )


def test_find_unstorable_checks_keys_and_escapes_them_in_the_path() -> None:
    path = find_unstorable({"extra": {"k\x00y": 1}})
    assert path == 'extra["k\\u0000y"]'
    assert "\x00" not in path


def test_find_unstorable_accepts_storable_content_at_any_depth() -> None:
    deep: Any = "fine \u2028 😀"
    for _ in range(5000):
        deep = [deep]
    assert find_unstorable(deep) is None


def test_unstorable_content_in_unknown_fields_invalidates_the_event() -> None:
    assert "surrogate" in errors_of(event(extra="\udfff"))["extra"][0]


def test_proto_keys_are_refused_because_the_signature_cannot_cover_them() -> None:
    errors = errors_of(event(extra={"__proto__": {"admin": True}}))
    assert "legacy signature" in errors["extra.__proto__"][0]
    assert find_unstorable(event(extra={"__proto__": 1})) is None  # storable, just unsigned


# -- the envelope ---------------------------------------------------------------------------


def envelope_errors(data: Any) -> dict[str, list[str]]:
    with pytest.raises(MilestoneInvalid) as caught:
        validate_envelope(data)
    return caught.value.errors


def test_a_valid_envelope_keeps_everything() -> None:
    data = envelope(trace="abc")
    result = validate_envelope(data)

    assert result.idempotency_key == "6f1c2b7e9a4d4c0f8e3b5a7d9c1e2f30"
    assert result.sent_at == datetime(2026, 2, 28, 12, 34, 56, tzinfo=UTC)
    assert result.event.milestone_id == "runtime.validation.example"
    assert result.raw is data


def test_sent_at_is_optional_but_must_be_a_timestamp_when_present() -> None:
    data = envelope()
    del data["sentAtUtc"]
    assert validate_envelope(data).sent_at is None
    assert "time zone" in envelope_errors(envelope(sentAtUtc="2026-02-28T12:34:56"))["sentAtUtc"][0]


def test_event_errors_are_prefixed_with_event() -> None:
    bad = event(riskStatus="late", evidence=[{"type": "log", "path": "p"}])
    errors = envelope_errors(envelope(event=bad))
    assert set(errors) == {"event.riskStatus", "event.evidence[0].summary"}


@pytest.mark.parametrize("bad_event", [None, [], "x"])
def test_a_non_object_event_is_reported_on_event(bad_event: Any) -> None:
    assert envelope_errors(envelope(event=bad_event)) == {"event": ["Must be a JSON object."]}


def test_a_missing_event_is_required() -> None:
    data = envelope()
    del data["event"]
    assert "required" in envelope_errors(data)["event"][0]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (..., "required"),
        ("", "blank"),
        (42, "string"),
        ("k" * 201, "at most 200"),
        (" padded", "printable ASCII"),
        ("tab\tinside", "printable ASCII"),
        ("clé", "printable ASCII"),
    ],
)
def test_idempotency_key_rules(key: Any, message: str) -> None:
    data = envelope(idempotencyKey=key)
    if key is ...:
        del data["idempotencyKey"]
    errors = envelope_errors(data)
    assert list(errors) == ["idempotencyKey"]
    assert message in errors["idempotencyKey"][0]


@pytest.mark.parametrize("key", ["k" * 200, "a b", "x", "run:42/step#3"])
def test_idempotency_keys_of_printable_ascii_up_to_200_chars_are_accepted(key: str) -> None:
    assert validate_envelope(envelope(idempotencyKey=key)).idempotency_key == key


def test_a_non_object_envelope_is_reported_at_the_root() -> None:
    assert envelope_errors([1]) == {"": ["Must be a JSON object."]}


def test_unstorable_content_anywhere_in_the_envelope_names_its_path() -> None:
    errors = envelope_errors(envelope(meta={"x\ud800": 1}, event=event(claim="a\x00")))
    assert "NUL" in errors["event.claim"][0]
    assert "surrogate" in errors['meta["x\\ud800"]'][0]
