"""The feed table is a projection: a rebuild reproduces it exactly."""

from __future__ import annotations

import pytest

from clawdbot.eventstore import projections
from feed_app.models import DeadLetter, FeedItem
from tests.factories import EnvelopeFactory

pytestmark = pytest.mark.django_db


def test_rebuild_reproduces_the_live_table(ingest):
    name = "feed"
    for _ in range(7):
        ingest.send(EnvelopeFactory())
        ingest.post(b"not json", {})
    projection = projections.get(name)
    live = projections.table_snapshot(projection)
    assert any(live.values())
    FeedItem.objects.all().delete()
    projections.rebuild(name, batch_size=3)
    assert projections.table_snapshot(projection) == live


def test_rebuild_reads_only_its_own_event_types(ingest):
    ingest.send(EnvelopeFactory())
    ingest.post(b"not json", {})
    assert projections.rebuild("feed") == 1
    assert DeadLetter.objects.count() == 1  # rejections are no projection: left alone
