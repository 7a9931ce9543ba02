"""Retry policy as data: the schedule, what each answer means, and when to try again.

Everything here is pure (no database, no clock, no randomness of its own) so each rule is a
plain unit test.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import Enum

#: Each wait is spread by ±20 % so deliveries failed together do not retry together.
JITTER = 0.2
#: A receiver's Retry-After is honoured, but never sooner than this …
RETRY_AFTER_MIN_S = 1.0
#: … nor later than this: a receiver cannot park a delivery for days.
RETRY_AFTER_MAX_S = 6 * 3600.0
#: HTTP statuses worth retrying besides every 5xx.
RETRYABLE_STATUS = frozenset({408, 425, 429})


class Verdict(Enum):
    DELIVERED = "delivered"
    DUPLICATE = "duplicate"
    RETRY = "retry"
    REJECTED = "rejected"


def parse_schedule(text: str) -> tuple[float, ...]:
    """``"5,300,1800"`` → ``(5.0, 300.0, 1800.0)``; ValueError on a step that is not a
    finite, non-negative number of seconds (``nan`` and ``inf`` parse as floats)."""
    try:
        steps = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"invalid retry schedule {text!r}: not a list of seconds") from None
    if not all(math.isfinite(step) and step >= 0 for step in steps):
        raise ValueError(f"invalid retry schedule {text!r}: negative or non-finite delay")
    return steps


def max_attempts(schedule: tuple[float, ...]) -> int:
    return 1 + len(schedule)


def classify(status_code: int | None, body: bytes) -> Verdict:
    """SPEC §7's outcome rules for one answer; ``None`` is a network error or timeout."""
    if status_code is None:
        return Verdict.RETRY
    if 200 <= status_code < 300:
        return Verdict.DUPLICATE if _says_duplicate(body) else Verdict.DELIVERED
    if status_code in RETRYABLE_STATUS or status_code >= 500:
        return Verdict.RETRY
    return Verdict.REJECTED  # other 4xx, and 1xx/3xx (redirects are not followed)


#: Bodies longer than this are not parsed for ``"status": "duplicate"``: a reply that big
#: is not the ingest's answer, and parsing it would cost more than the attempt.
DUPLICATE_PROBE_BYTES = 4096


def _says_duplicate(body: bytes) -> bool:
    if len(body) > DUPLICATE_PROBE_BYTES:
        return False
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # "[[[[…" nests too deep
        return False
    return isinstance(parsed, dict) and parsed.get("status") == "duplicate"


#: A Retry-After longer than this is not one of the two forms: ignored, never parsed.
RETRY_AFTER_MAX_CHARS = 64
# RFC 9110 §10.2.3: delta-seconds (1*DIGIT, ASCII only) or an HTTP-date (§5.6.7) in one of
# its three forms; anything else (signs, exponents, "²", several values) is ignored.
_DELTA_SECONDS = re.compile(r"[0-9]+", re.ASCII)
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_HTTP_DATE = re.compile(
    rf"{_DAY}, [0-9]{{2}} {_MONTH} [0-9]{{4}} [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}} GMT"  # IMF
    rf"|(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), [0-9]{{2}}-{_MONTH}-"
    rf"[0-9]{{2}} [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}} GMT"  # RFC 850
    rf"|{_DAY} {_MONTH} [ 0-9][0-9] [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}} [0-9]{{4}}",  # asctime
    re.ASCII,
)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks for, or None when it is absent or not valid.

    Only the two forms of RFC 9110 count: delta-seconds (ASCII digits) and an HTTP-date;
    a date in the past means "now". Never raises, whatever the receiver sent: the value
    comes from a stranger, and one bad header must not cost the recording of an attempt.
    Repeated headers reach here joined by ", ", which matches neither form.
    """
    if not value or len(value) > RETRY_AFTER_MAX_CHARS:
        return None
    value = value.strip(" \t")
    if _DELTA_SECONDS.fullmatch(value):
        return float(min(int(value), 10**9))  # at most 64 digits; clamped later anyway
    if not _HTTP_DATE.fullmatch(value):
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if moment.tzinfo is None:  # asctime carries no zone: HTTP-dates are always GMT
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def next_attempt_at(
    *,
    schedule: tuple[float, ...],
    attempts_made: int,
    now: datetime,
    retry_after_s: float | None = None,
    uniform: Callable[[float, float], float] = random.uniform,
) -> datetime | None:
    """When to try again after ``attempts_made`` attempts, or None when they are exhausted.

    A ``Retry-After`` replaces the scheduled wait, clamped to the bounds above; otherwise
    the scheduled wait gets ±``JITTER``. ``uniform`` is injectable for tests.
    """
    if attempts_made >= max_attempts(schedule):
        return None
    if retry_after_s is not None:
        delay = min(max(retry_after_s, RETRY_AFTER_MIN_S), RETRY_AFTER_MAX_S)
    else:
        step = schedule[attempts_made - 1]
        delay = step * uniform(1 - JITTER, 1 + JITTER)
    return now + timedelta(seconds=delay)
