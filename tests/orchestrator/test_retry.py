from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator_app import retry
from orchestrator_app.retry import Verdict

NOW = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("status", "body", "verdict"), [
    (200, b'{"ok":true,"status":"accepted"}', Verdict.DELIVERED),
    (202, b"not json", Verdict.DELIVERED),
    (200, b'{"ok":true,"status":"duplicate"}', Verdict.DUPLICATE),
    (408, b"", Verdict.RETRY), (425, b"", Verdict.RETRY), (429, b"", Verdict.RETRY),
    (500, b"", Verdict.RETRY), (503, b"", Verdict.RETRY), (599, b"", Verdict.RETRY),
    (None, b"", Verdict.RETRY),
    (400, b"", Verdict.REJECTED), (401, b"", Verdict.REJECTED), (404, b"", Verdict.REJECTED),
    (410, b"", Verdict.REJECTED), (413, b"", Verdict.REJECTED), (302, b"", Verdict.REJECTED),
])
def test_classify_follows_the_outcome_rules(status, body, verdict):
    assert retry.classify(status, body) is verdict


def test_schedule_parses_from_the_setting_format():
    assert retry.parse_schedule("5, 300,1800") == (5.0, 300.0, 1800.0)
    assert retry.max_attempts(retry.parse_schedule("5,300")) == 3


@pytest.mark.parametrize("text", ["5,-1", "5,nan", "inf", "5,x"])
def test_schedule_refuses_a_negative_non_finite_or_non_numeric_delay(text):
    with pytest.raises(ValueError):
        retry.parse_schedule(text)


@pytest.mark.parametrize("factor", [0.8, 1.0, 1.2])
def test_next_attempt_applies_the_step_with_jitter_bounds(factor):
    due = retry.next_attempt_at(schedule=(5, 300), attempts_made=2, now=NOW,
                                uniform=lambda lo, hi: factor)
    assert due == NOW + timedelta(seconds=300 * factor)


def test_jitter_stays_within_twenty_percent():
    dues = [retry.next_attempt_at(schedule=(100,), attempts_made=1, now=NOW)
            for _ in range(200)]
    assert all(NOW + timedelta(seconds=80) <= d <= NOW + timedelta(seconds=120) for d in dues)


def test_next_attempt_is_none_when_attempts_are_exhausted():
    assert retry.next_attempt_at(schedule=(5, 300), attempts_made=3, now=NOW) is None


def test_retry_after_replaces_the_scheduled_wait():
    due = retry.next_attempt_at(schedule=(5,), attempts_made=1, now=NOW, retry_after_s=42)
    assert due == NOW + timedelta(seconds=42)


def test_retry_after_is_clamped_to_its_bounds():
    late = retry.next_attempt_at(schedule=(5,), attempts_made=1, now=NOW, retry_after_s=1e9)
    soon = retry.next_attempt_at(schedule=(5,), attempts_made=1, now=NOW, retry_after_s=0)
    assert late == NOW + timedelta(seconds=retry.RETRY_AFTER_MAX_S)
    assert soon == NOW + timedelta(seconds=retry.RETRY_AFTER_MIN_S)


def test_retry_after_parses_seconds_and_http_dates():
    assert retry.parse_retry_after("120", now=NOW) == 120
    assert retry.parse_retry_after("Sat, 28 Feb 2026 12:01:00 GMT", now=NOW) == 60
    assert retry.parse_retry_after("soon", now=NOW) is None
    assert retry.parse_retry_after(None, now=NOW) is None


@pytest.mark.parametrize("value", [
    "²", "١٢", "-1", "+5", "1e9", "1.5", "0x10", "", "   ", "5, 5", "9" * 65,
    "Sat, 28 Feb 2026 12:01:00", "Sat, 28 Feb 2026 12:01:00 CET", "Sat, 31 Feb 2026 12:00:00 GMT",
    "tomorrow", "\x00",
])
def test_retry_after_that_is_neither_form_is_ignored_never_raised(value):
    assert retry.parse_retry_after(value, now=NOW) is None


@pytest.mark.parametrize(("value", "seconds"), [
    ("0", 0), (" 7 ", 7), ("9" * 64, 1e9),
    ("Sat, 28 Feb 2026 11:00:00 GMT", 0),  # in the past: now
    ("Saturday, 28-Feb-26 12:01:00 GMT", 60), ("Sat Feb 28 12:01:00 2026", 60),
])
def test_retry_after_reads_both_forms_of_rfc_9110(value, seconds):
    assert retry.parse_retry_after(value, now=NOW) == seconds


def test_classify_survives_a_body_nested_too_deep_for_the_parser():
    assert retry.classify(200, b"[" * 3000) is Verdict.DELIVERED
