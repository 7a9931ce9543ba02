"""Junk cannot fill the database nor slow genuine ingests (SPEC §4, last paragraph).

Rejections are written outside the event log (no append lock), kept one by one only up to
a per-address, per-minute limit and counted in an aggregate past it, and expire after the
retention period. Counts over the dead-letter never read the whole table.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone
from django.utils.module_loading import import_string

from clawdbot import counting
from clawdbot.eventstore import store
from feed_app import tasks
from feed_app.models import DeadLetter, FeedItem, RejectionWindow
from tests.factories import EnvelopeFactory

URL = "/api/milestones/dead-letter"
JUNK = b'{"junk": "' + b"x" * 2048 + b'"}'


def _junk(client: Client, n: int) -> list[int]:
    return [client.post("/internal/milestones/ingest", JUNK,
                        content_type="application/json").status_code for _ in range(n)]


def _raw_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    return psycopg.connect(**params)


@pytest.mark.django_db(transaction=True)
def test_a_rejection_does_not_wait_for_the_append_lock():
    # Another transaction is appending (it holds the event log's append lock until it
    # commits); a junk request must be answered and recorded meanwhile.
    holder = _raw_connection()
    try:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", [store.APPEND_LOCK_KEY])
        answered: list[int] = []
        worker = threading.Thread(target=lambda: answered.extend(_junk(Client(), 1)))
        worker.start()
        worker.join(timeout=15)
        assert answered == [401], "the rejection waited for the append lock"
        assert DeadLetter.objects.count() == 1
    finally:
        holder.rollback()
        holder.close()
        worker.join(timeout=15)


@override_settings(MILESTONE_REJECTION_DETAILS_PER_MINUTE=20)
def test_a_flood_from_one_address_is_aggregated_past_the_limit(db, operator_token):
    flood = Client(REMOTE_ADDR="198.51.100.9")
    events = store.count()
    assert set(_junk(flood, 300)) == {401}  # every one still answered as SPEC §4 says
    # The limit is per address and minute, and a flood may cross a minute's end: per
    # minute, 20 detailed rows, then one aggregate row counting the rest of that minute.
    hits = {w.minute: w.hits for w in RejectionWindow.objects.filter(remote_addr="198.51.100.9")}
    assert sum(hits.values()) == 300
    assert DeadLetter.objects.filter(aggregate=False).count() == sum(
        min(h, 20) for h in hits.values())
    aggregates = list(DeadLetter.objects.filter(aggregate=True))
    assert {a.window_start: a.count for a in aggregates} == {
        minute: h - 20 for minute, h in hits.items() if h > 20}
    assert sum(a.count for a in aggregates) >= 260  # at most one minute's end crossed
    for aggregate in aggregates:
        assert aggregate.remote_addr == "198.51.100.9"
        assert aggregate.reason_code == "missing_signature"
        assert aggregate.last_at >= aggregate.recorded_at
    assert DeadLetter.objects.aggregate(n=Sum("count"))["n"] == 300
    assert store.count() == events  # nothing in the event log

    # Another address is not throttled by the first one's flood.
    assert _junk(Client(REMOTE_ADDR="198.51.100.10"), 1) == [401]
    assert DeadLetter.objects.filter(remote_addr="198.51.100.10", aggregate=False).count() == 1

    # The aggregate shows in the dead-letter API, with its count and first/last times.
    items = Client().get(URL, headers={"Authorization": f"Token {operator_token}"}).json()
    (shown,) = [i for i in items["items"] if i["aggregate"]]
    assert shown["count"] == 280 and shown["timestampUtc"] <= shown["lastAtUtc"]
    assert shown["remoteAddr"] == "198.51.100.9" and shown["reasonCode"] == "missing_signature"


@override_settings(MILESTONE_REJECTION_DETAILS_PER_MINUTE=2)
def test_the_aggregate_is_per_reason(db):
    client = Client(REMOTE_ADDR="198.51.100.11")
    _junk(client, 3)
    for _ in range(3):
        client.post("/internal/milestones/ingest", b"[1,", content_type="application/json",
                    headers={"x-openclaw-signature": "x", "x-openclaw-timestamp": "t"})
    rows = DeadLetter.objects.filter(aggregate=True).order_by("reason_code")
    # The limit is per address: past it, every reason gets its own aggregate.
    assert [(r.reason_code, r.count) for r in rows] == [("invalid_json", 3),
                                                         ("missing_signature", 1)]


def test_retention_deletes_old_rejections_only(db, ingest):
    ingest.send(EnvelopeFactory())
    _junk(Client(), 3)
    old, recent, _ = DeadLetter.objects.order_by("id")
    now = timezone.now()
    DeadLetter.objects.filter(pk=old.pk).update(recorded_at=now - timedelta(days=40),
                                                last_at=now - timedelta(days=31))
    DeadLetter.objects.filter(pk=recent.pk).update(last_at=now - timedelta(days=29))
    RejectionWindow.objects.update(minute=now - timedelta(hours=1))
    events = store.count()

    assert tasks.rejections_expire() == 1
    assert not DeadLetter.objects.filter(pk=old.pk).exists()
    assert DeadLetter.objects.count() == 2
    assert RejectionWindow.objects.count() == 0
    assert FeedItem.objects.count() == 1 and store.count() == events  # never deleted


@override_settings(MILESTONE_REJECTION_RETENTION_DAYS=1)
def test_the_retention_period_is_a_setting(db):
    _junk(Client(), 1)
    DeadLetter.objects.update(last_at=timezone.now() - timedelta(days=2))
    assert tasks.rejections_expire() == 1


@override_settings(MILESTONE_REJECTION_RETENTION_DAYS=1)
def test_duplicate_counts_are_kept_as_long_as_rejection_details(db):
    from feed_app.models import DuplicateHour

    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    DuplicateHour.objects.create(hour=now - timedelta(days=2), count=5)
    DuplicateHour.objects.create(hour=now, count=3)
    tasks.rejections_expire()
    assert list(DuplicateHour.objects.values_list("count", flat=True)) == [3]


def test_the_retention_task_is_scheduled(db):
    from django_q.models import Schedule

    Schedule.objects.filter(name=tasks.RETENTION_SCHEDULE_NAME).delete()
    tasks.retention_schedule_ensure()
    tasks.retention_schedule_ensure()
    (schedule,) = Schedule.objects.filter(name=tasks.RETENTION_SCHEDULE_NAME)
    assert import_string(schedule.func) is tasks.rejections_expire
    assert schedule.schedule_type == Schedule.HOURLY and schedule.repeats == -1


def test_the_dead_letter_count_is_capped_then_estimated(db, operator_token, monkeypatch):
    monkeypatch.setattr(counting, "COUNT_CAP", 3)
    _junk(Client(), 6)
    body = Client().get(URL, headers={"Authorization": f"Token {operator_token}"}).json()
    assert body["countExact"] is False and body["count"] >= 4
    monkeypatch.setattr(counting, "COUNT_CAP", 10)
    body = Client().get(URL, headers={"Authorization": f"Token {operator_token}"}).json()
    assert (body["count"], body["countExact"]) == (6, True)


def _unbounded(queries: list[dict]) -> list[str]:
    """Queries that read a whole table: a COUNT without LIMIT, or a SELECT DISTINCT."""
    found = []
    for query in queries:
        sql = query["sql"].upper()
        if ("COUNT(" in sql and "LIMIT" not in sql) or "SELECT DISTINCT" in sql:
            found.append(query["sql"])
    return found


@pytest.mark.parametrize("changelist", ["/admin/feed_app/deadletter/",
                                        "/admin/feed_app/feeditem/",
                                        "/admin/eventstore/event/"])
def test_admin_changelists_never_count_or_scan_a_whole_table(client, admin_user, ingest,
                                                             changelist):
    ingest.send(EnvelopeFactory())
    _junk(Client(), 2)
    client.force_login(admin_user)
    with CaptureQueriesContext(connection) as captured:
        page = client.get(changelist)
    assert page.status_code == 200
    assert _unbounded(captured.captured_queries) == []
