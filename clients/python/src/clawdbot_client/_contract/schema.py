"""The milestone event and ingest envelope (SPEC §2, §3), validated with field-named errors.

Validation never stops at the first problem: ``MilestoneInvalid.errors`` maps every
failing field path (``riskStatus``, ``evidence[0].type``, ``event.timestampUtc``) to its
messages, so a 400 response can name them all. Unknown fields are allowed and kept in
``raw``, because the signature covers them and forward compatibility needs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import Any

from .storable import content_problems, join_path

__all__ = [
    "DEFAULT_SOURCE",
    "EVIDENCE_TYPES",
    "FIELD_MAX_LENGTHS",
    "IDEMPOTENCY_KEY_MAX_LENGTH",
    "RISK_STATUSES",
    "SOURCES",
    "Envelope",
    "Evidence",
    "Milestone",
    "MilestoneInvalid",
    "parse_timestamp",
    "validate_envelope",
    "validate_milestone",
]

EVIDENCE_TYPES = ("doc", "commit", "issue", "pr", "runbook", "metric", "log")
RISK_STATUSES = ("on-track", "at-risk", "blocked", "completed")
SOURCES = ("orchestrator", "agent", "operator")
DEFAULT_SOURCE = "orchestrator"
IDEMPOTENCY_KEY_MAX_LENGTH = 200
#: The event fields both sides keep in indexed columns, and the most characters each may
#: have: 500 characters of UTF-8 stay within a PostgreSQL B-tree row (2,704 bytes) even
#: when every one takes four bytes. Every other field lives in JSON and is bounded only by
#: the body size limit.
FIELD_MAX_LENGTHS = {"milestoneId": 500, "scope": 500}

REQUIRED = "This field is required."
NOT_STRING = "Must be a string."
BLANK = "Must not be blank."
NOT_OBJECT = "Must be a JSON object."

# RFC 3339 profile of ISO-8601: full date, time with seconds, and an explicit zone.
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))?",
    re.ASCII,
)
# Printable ASCII: the key is also sent as the webhook-id header.
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?", re.ASCII)


class MilestoneInvalid(ValueError):
    """An event or envelope broke the contract. ``errors``: field path -> messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__(
            "; ".join(f"{path or '(root)'}: {' '.join(m)}" for path, m in errors.items())
        )


@dataclass(frozen=True, slots=True)
class Evidence:
    type: str
    path: str
    summary: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Milestone:
    """A valid milestone event. ``raw`` is the event exactly as received."""

    milestone_id: str
    timestamp_utc: str  # as sent; ``timestamp`` is the same instant, aware, in UTC
    timestamp: datetime
    scope: str
    claim: str
    evidence: tuple[Evidence, ...]
    risk_status: str
    next_action: str
    source: str
    raw: dict[str, Any] = field(hash=False, repr=False)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A valid ingest envelope. ``raw`` is the whole parsed body, unknown fields included."""

    idempotency_key: str
    sent_at_utc: str | None
    sent_at: datetime | None
    event: Milestone
    raw: dict[str, Any] = field(hash=False, repr=False)


class _Errors(dict[str, list[str]]):
    def add(self, path: str, message: str) -> None:
        self.setdefault(path, []).append(message)


# -- timestamps ------------------------------------------------------------------------


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 date-time with ``Z`` or ``±HH:MM`` into an aware UTC datetime.

    Raises ValueError with a message fit for a field error.
    """
    match = _DATETIME.fullmatch(text)
    if match is None:
        raise ValueError("Must be an ISO-8601 date-time, e.g. 2026-02-28T12:34:56.000Z.")
    # The common form (what JavaScript's toISOString writes) by the C parser, which reads
    # it exactly as below; anything else, or an invalid value, takes the general path.
    frac = match.group(7)
    if text[10] == "T" and text[-1] == "Z" and (frac is None or len(frac) <= 6):
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
    if not zulu and not sign:
        raise ValueError("Must include a time zone: Z or an offset such as +02:00.")
    if off_m and int(off_m) > 59:
        raise ValueError("Must have a time zone offset with minutes below 60.")
    try:
        offset = timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
        tz = timezone(-offset if sign == "-" else offset)
        micros = int((frac or "").ljust(6, "0")[:6])
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tz
        )
    except ValueError:
        raise ValueError("Must be a real date and time (check each field's range).") from None
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # the offset moves it past 9999-12-31 or before 0001-01-01
        raise ValueError("Must be an instant between the years 1 and 9999 in UTC.") from None


# -- field checks ----------------------------------------------------------------------
# Each helper records its own errors and returns a falsy value on failure, so callers can
# check "did anything fail" by counting errors rather than threading None everywhere.


def _text(
    obj: dict[str, Any], key: str, errors: _Errors, path: str, *, required: bool = True
) -> str:
    """The non-blank string at ``key``; "" after recording why there is none."""
    if key not in obj:
        if required:
            errors.add(path, REQUIRED)
        return ""
    value = obj[key]
    if not isinstance(value, str):
        errors.add(path, NOT_STRING)
        return ""
    if not value.strip():
        errors.add(path, BLANK)
        return ""
    if key in FIELD_MAX_LENGTHS and len(value) > FIELD_MAX_LENGTHS[key]:
        errors.add(path, f"Must be at most {FIELD_MAX_LENGTHS[key]} characters.")
        return ""
    return value


def _choice(
    obj: dict[str, Any], key: str, choices: tuple[str, ...], errors: _Errors, path: str
) -> str:
    value = _text(obj, key, errors, path)
    if value and value not in choices:
        errors.add(path, f"Must be one of: {', '.join(choices)}.")
        return ""
    return value


def _timestamp(
    obj: dict[str, Any], key: str, errors: _Errors, path: str, *, required: bool = True
) -> datetime | None:
    text = _text(obj, key, errors, path, required=required)
    if not text:
        return None
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        errors.add(path, str(exc))
        return None


def _evidence_item(item: Any, errors: _Errors, path: str) -> Evidence | None:
    if not isinstance(item, dict):
        errors.add(path, NOT_OBJECT)
        return None
    at = partial(join_path, path)
    before = len(errors)
    kind = _choice(item, "type", EVIDENCE_TYPES, errors, at("type"))
    where = _text(item, "path", errors, at("path"))
    summary = _text(item, "summary", errors, at("summary"))
    ref = item.get("ref")  # optional, but a string when present (null included)
    if "ref" in item and not isinstance(ref, str):
        errors.add(at("ref"), NOT_STRING)
    if len(errors) != before:
        return None
    return Evidence(type=kind, path=where, summary=summary, ref=ref)


def _evidence(obj: dict[str, Any], errors: _Errors, path: str) -> tuple[Evidence, ...]:
    if "evidence" not in obj:
        errors.add(path, REQUIRED)
        return ()
    items = obj["evidence"]
    if not isinstance(items, list):
        errors.add(path, "Must be a list of evidence objects.")
        return ()
    if not items:
        errors.add(path, "Must hold at least one item: no milestone without evidence.")
        return ()
    parsed = [_evidence_item(item, errors, f"{path}[{i}]") for i, item in enumerate(items)]
    return tuple(item for item in parsed if item is not None)


def _check_event(data: Any, errors: _Errors, prefix: str) -> Milestone | None:
    if not isinstance(data, dict):
        errors.add(prefix, NOT_OBJECT)
        return None
    at = partial(join_path, prefix)
    before = len(errors)
    milestone_id = _text(data, "milestoneId", errors, at("milestoneId"))
    timestamp = _timestamp(data, "timestampUtc", errors, at("timestampUtc"))
    scope = _text(data, "scope", errors, at("scope"))
    claim = _text(data, "claim", errors, at("claim"))
    evidence = _evidence(data, errors, at("evidence"))
    risk_status = _choice(data, "riskStatus", RISK_STATUSES, errors, at("riskStatus"))
    next_action = _text(data, "nextAction", errors, at("nextAction"))
    source = DEFAULT_SOURCE
    if "source" in data:
        source = _choice(data, "source", SOURCES, errors, at("source"))
    if len(errors) != before or timestamp is None:
        return None
    return Milestone(
        milestone_id=milestone_id,
        timestamp_utc=data["timestampUtc"],
        timestamp=timestamp,
        scope=scope,
        claim=claim,
        evidence=evidence,
        risk_status=risk_status,
        next_action=next_action,
        source=source,
        raw=data,
    )


def idempotency_key_valid(key: object) -> bool:
    """Whether ``key`` is a usable idempotencyKey (it also travels as the webhook-id header)."""
    return (
        isinstance(key, str)
        and 0 < len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH
        and _IDEMPOTENCY_KEY.fullmatch(key) is not None
    )


def _idempotency_key(data: dict[str, Any], errors: _Errors) -> str:
    key = _text(data, "idempotencyKey", errors, "idempotencyKey")
    if key and len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        errors.add("idempotencyKey", f"Must be at most {IDEMPOTENCY_KEY_MAX_LENGTH} characters.")
    elif key and not _IDEMPOTENCY_KEY.fullmatch(key):
        errors.add("idempotencyKey", "Must be printable ASCII without leading or trailing spaces.")
    return key


def _add_content_problems(value: Any, errors: _Errors) -> None:
    for where, problem in content_problems(value):
        errors.add(where, problem)


# -- entry points ------------------------------------------------------------------------


def validate_milestone(data: Any) -> Milestone:
    """Validate one milestone event (SPEC §2); raise MilestoneInvalid naming every bad field.

    Paths are relative to the event (``evidence[0].type``); a non-object is reported
    under ``""``. An absent ``source`` means ``orchestrator``; ``raw`` is ``data`` itself.
    Strings PostgreSQL cannot store and ``__proto__`` keys are errors at their path.
    """
    errors = _Errors()
    milestone = _check_event(data, errors, "")
    _add_content_problems(data, errors)
    if errors or milestone is None:
        raise MilestoneInvalid(dict(errors))
    return milestone


def validate_envelope(data: Any) -> Envelope:
    """Validate an ingest envelope (SPEC §3); raise MilestoneInvalid naming every bad field.

    Event fields are reported as ``event.<path>``. ``idempotencyKey``: 1-200 printable
    ASCII characters (it doubles as the webhook-id header). ``sentAtUtc`` is optional.
    """
    if not isinstance(data, dict):
        raise MilestoneInvalid({"": [NOT_OBJECT]})
    errors = _Errors()
    key = _idempotency_key(data, errors)
    sent_at = _timestamp(data, "sentAtUtc", errors, "sentAtUtc", required=False)
    milestone = None
    if "event" in data:
        milestone = _check_event(data["event"], errors, "event")
    else:
        errors.add("event", REQUIRED)
    _add_content_problems(data, errors)
    if errors or milestone is None:
        raise MilestoneInvalid(dict(errors))
    return Envelope(
        idempotency_key=key,
        sent_at_utc=data.get("sentAtUtc"),
        sent_at=sent_at,
        event=milestone,
        raw=data,
    )
