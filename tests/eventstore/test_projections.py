from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from clawdbot.eventstore import projections, store
from clawdbot.eventstore.models import ProjectionCheckpoint, StreamIndex
from clawdbot.eventstore.store import Expect, NewEvent

pytestmark = pytest.mark.django_db


def _seed(count: int) -> None:
    with transaction.atomic():
        for i in range(count):
            store.append(f"stream-{i % 7}", [NewEvent(f"type-{i % 3}", {"i": i})],
                         expected_version=Expect.ANY)


def test_catch_up_applies_each_event_once_and_stores_its_checkpoint():
    _seed(20)
    assert projections.catch_up("stream_index", batch_size=6, max_batches=1) == 6
    assert projections.catch_up("stream_index", batch_size=6) == 14
    assert projections.catch_up("stream_index") == 0

    assert ProjectionCheckpoint.objects.get(name="stream_index").position == store.last_position()
    row = StreamIndex.objects.get(stream_id="stream-0")
    assert row.version == 3  # events 0, 7, 14
    assert row.last_type == "type-2"  # event 14
    assert StreamIndex.objects.count() == 7


def test_rebuild_reproduces_the_live_tables_and_repairs_drift():
    _seed(50)
    projections.catch_up("stream_index", batch_size=8)
    projection = projections.get("stream_index")
    live = projections.table_snapshot(projection)

    StreamIndex.objects.filter(stream_id="stream-3").update(version=999)
    StreamIndex.objects.create(stream_id="bogus", version=1, first_position=1, last_position=1,
                               last_type="x", last_recorded_at="2026-01-01T00:00:00Z")
    assert projections.table_snapshot(projection) != live

    assert projections.rebuild("stream_index", batch_size=9) == 50
    assert projections.table_snapshot(projection) == live


def test_rebuild_command_reports_progress_and_totals():
    _seed(12)
    out = io.StringIO()
    call_command("rebuild_projections", "--projection", "stream_index", "--batch-size", "5",
                 stdout=out)
    text = out.getvalue()
    assert "(12/12)" in text and "100.0%" in text
    assert "stream_index: 12 event(s) replayed" in text
    assert StreamIndex.objects.count() == 7


def test_rebuild_command_names_an_unknown_projection():
    with pytest.raises(CommandError, match="no projection named 'nope'"):
        call_command("rebuild_projections", "--projection", "nope")


class _Collect(projections.Projection):
    """An inline projection with no tables that remembers each batch it was given."""

    name = "test_collect"
    models = ()
    types = frozenset({"wanted"})

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, str]]] = []

    def apply(self, events):
        self.batches.append([(e.stream_id, e.type) for e in events])


@pytest.fixture
def collect():
    projection = _Collect()
    projections.register(projection)
    yield projection
    projections._registry.pop(projection.name)


def test_append_only_stores_and_record_applies_inline_projections(collect):
    with transaction.atomic():
        store.append("s", [NewEvent("wanted", {})], expected_version=Expect.ANY)
        assert collect.batches == []
        projections.record("s", [NewEvent("wanted", {}), NewEvent("other", {})],
                           expected_version=Expect.ANY)
    assert collect.batches == [[("s", "wanted")]]


def test_record_batch_applies_each_projection_once_to_the_whole_batch(collect):
    with transaction.atomic():
        projections.record_batch([
            projections.Append("a", [NewEvent("wanted", {})], Expect.NO_STREAM),
            projections.Append("b", [NewEvent("other", {}), NewEvent("wanted", {})], Expect.ANY),
        ])
        projections.record_batch([projections.Append("c", [NewEvent("other", {})], Expect.ANY)])
    assert collect.batches == [[("a", "wanted"), ("b", "wanted")]]
