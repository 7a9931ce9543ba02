"""Group commit (feed_app.group_commit): ingests that arrive together share one statement
and one commit, and each still gets the answer it would have had alone."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from clawdbot import asyncdb
from clawdbot.eventstore import projections, store
from feed_app import group_commit, services
from feed_app.checks import IngestRequest, Passed, ingest_check
from feed_app.models import DuplicateHour, FeedItem
from tests.factories import EnvelopeFactory
from tests.feed.factories import signed
from tests.feed.test_hot_paths import INGEST, _call_async

pytestmark = pytest.mark.django_db(transaction=True)


def _at_once(requests: list[tuple[bytes, dict[str, str]]]) -> tuple[list, list[int]]:
    """Every request through the ASGI application at once, on one event loop; the answers
    in request order and this loop's committer's (requests, statements)."""

    async def run() -> tuple[list, list[int]]:
        try:
            answers = await asyncio.gather(*(
                _call_async("POST", INGEST, body=body, headers=headers)
                for body, headers in requests))
            return answers, list(group_commit.committer().stored)
        finally:
            await asyncdb.close_pools()

    return async_to_sync(run)()


def test_ingests_at_once_share_statements_and_each_gets_its_own_answer():
    stored_before = EnvelopeFactory()
    assert _at_once([signed(stored_before)])[0][0][0] == 200
    envelopes = [EnvelopeFactory() for _ in range(40)]
    repeated = envelopes[7]
    # The same key sent again in the same burst, with another milestoneId: a duplicate
    # naming the first one's, as a single ingest just after it would be answered.
    repeat = {**repeated, "event": {**repeated["event"], "milestoneId": "another.one"}}
    requests = ([signed(e) for e in envelopes] + [signed(repeated)] * 3 + [signed(repeat)]
                + [signed(stored_before)])

    answers, (requests_stored, statements) = _at_once(requests)

    assert all(status == 200 for status, _h, _b in answers)
    bodies = [json.loads(content) for _s, _h, content in answers]
    assert bodies[:40] == [{"ok": True, "status": "accepted",
                            "milestoneId": e["event"]["milestoneId"]} for e in envelopes]
    assert bodies[40:44] == [{"ok": True, "status": "duplicate",
                              "milestoneId": repeated["event"]["milestoneId"]}] * 4
    assert bodies[44] == {"ok": True, "status": "duplicate",
                          "milestoneId": stored_before["event"]["milestoneId"]}
    assert requests_stored == len(requests)
    assert statements < len(requests) / 4  # they went in groups, not one by one
    assert FeedItem.objects.count() == 41
    assert store.count(types=["feed.milestone_accepted"]) == 41
    positions = list(FeedItem.objects.order_by("position").values_list("position", flat=True))
    assert positions == list(range(positions[0], positions[0] + 41))  # no gap
    assert DuplicateHour.objects.aggregate(n=Sum("count"))["n"] == 5
    # The rows a group wrote are the rows a rebuild of the log writes.
    columns = [f.attname for f in FeedItem._meta.fields]
    live = list(FeedItem.objects.order_by("position").values_list(*columns))
    projections.rebuild("feed")
    assert list(FeedItem.objects.order_by("position").values_list(*columns)) == live


def _accept(envelope: dict) -> services.MilestoneAccept:
    body, headers = signed(envelope)
    request = IngestRequest(body, {k.lower(): v for k, v in headers.items()}, "192.0.2.9")
    verdict = ingest_check(request, now=timezone.now())
    assert isinstance(verdict, Passed)
    return services.milestone_accept(request=request, verdict=verdict)


def test_an_item_whose_statement_fails_fails_alone_and_its_group_is_stored():
    broken, *fine = [EnvelopeFactory() for _ in range(6)]
    # A feed row for the key with no event behind it: the feed's unique key refuses the
    # group's statement, and then that item's own.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO feed_item (position, idempotency_key, milestone_id, timestamp, scope,"
            " risk_status, source, event, item, received_at) VALUES (10000000, %s, 'x',"
            " now(), 's', 'on-track', 'orchestrator', '{}', '{}', now())",
            [broken["idempotencyKey"]])
    accepts = [_accept(e) for e in [fine[0], broken, *fine[1:]]]

    async def run() -> tuple[list, list[int]]:
        try:
            results = await asyncio.gather(*(group_commit.committer().store(a)
                                             for a in accepts), return_exceptions=True)
            return results, list(group_commit.committer().stored)
        finally:
            await asyncdb.close_pools()

    results, (_requests, statements) = async_to_sync(run)()

    assert statements < len(accepts)
    assert "feed_item_idempotency_key" in str(results[1])  # the unique violation, its own
    others = [results[0], *results[2:]]
    assert [(r.status, r.milestone_id) for r in others] == [
        ("accepted", e["event"]["milestoneId"]) for e in fine]
    assert FeedItem.objects.exclude(position=10000000).count() == 5
    assert store.count(types=["feed.milestone_accepted"]) == 5


def test_with_grouping_off_each_ingest_is_its_own_statement(settings):
    settings.CLAWDBOT_INGEST_GROUP_MAX = 1
    envelopes = [EnvelopeFactory() for _ in range(10)]
    answers, (requests_stored, _statements) = _at_once([signed(e) for e in envelopes])
    assert [json.loads(content)["status"] for _s, _h, content in answers] == ["accepted"] * 10
    assert requests_stored == 0  # the committer was not used
    assert FeedItem.objects.count() == 10
