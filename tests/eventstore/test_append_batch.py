"""``store.append_batch``: many streams in one call, each standing alone."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction

from clawdbot.eventstore import store
from clawdbot.eventstore.store import Append, Expect, NewEvent
from tests.helpers import wait_for, waiting_on_lock


@pytest.fixture(autouse=True, params=["insert", "copy"])
def append_path(request, monkeypatch):
    """Every test runs on both ways a batch is written: one INSERT ... SELECT, or positions
    reserved under the lock and the events COPYed in (large batches)."""
    monkeypatch.setattr(store, "COPY_FROM_EVENTS", 10**9 if request.param == "insert" else 1)
    return request.param


def _events(*types: str) -> list[NewEvent]:
    return [NewEvent(t, {"n": i}) for i, t in enumerate(types)]


@pytest.mark.django_db
def test_batch_numbers_versions_per_stream_and_positions_in_input_order():
    with transaction.atomic():
        store.append("a", _events("old"), expected_version=Expect.ANY)
        outcomes = store.append_batch([
            Append("b", _events("b1", "b2"), Expect.NO_STREAM),
            Append("a", _events("a2"), 1),
            Append("c", _events("c1"), Expect.ANY),
        ])
    assert [o.conflict for o in outcomes] == [None, None, None]
    recorded = [r for o in outcomes for r in o.recorded]
    assert [(r.stream_id, r.version, r.type) for r in recorded] == [
        ("b", 1, "b1"), ("b", 2, "b2"), ("a", 2, "a2"), ("c", 1, "c1")]
    positions = [r.position for r in recorded]
    assert positions == sorted(positions) and len(set(positions)) == 4
    assert [e.type for e in store.read_stream("a")] == ["old", "a2"]
    assert store.read_stream("b")[1].data == {"n": 1}


@pytest.mark.django_db
def test_a_stream_at_the_wrong_version_is_refused_alone():
    with transaction.atomic():
        store.append("taken", _events("x"), expected_version=Expect.NO_STREAM)
        outcomes = store.append_batch([
            Append("new-1", _events("e"), Expect.NO_STREAM),
            Append("taken", _events("y", "z"), Expect.NO_STREAM),
            Append("stale", _events("e"), 3),
            Append("new-2", _events("e"), Expect.NO_STREAM),
        ])
    assert [o.conflict is None for o in outcomes] == [True, False, False, True]
    assert outcomes[1].recorded == [] and "expected no_stream" in str(outcomes[1].conflict)
    assert outcomes[2].conflict.actual == 0
    assert [e.type for e in store.read_stream("taken")] == ["x"]
    assert store.stream_version("stale") == 0
    assert store.stream_version("new-1") == store.stream_version("new-2") == 1


@pytest.mark.django_db
def test_a_stream_may_come_back_later_in_the_batch_keeping_input_order():
    with transaction.atomic():
        outcomes = store.append_batch([
            Append("s", _events("s1"), Expect.NO_STREAM),
            Append("t", _events("t1"), Expect.ANY),
            Append("s", _events("s2", "s3"), Expect.ANY),
            Append("s", _events("s4"), 3),
        ])
    assert [[(r.stream_id, r.version) for r in o.recorded] for o in outcomes] == [
        [("s", 1)], [("t", 1)], [("s", 2), ("s", 3)], [("s", 4)]]
    positions = [r.position for o in outcomes for r in o.recorded]
    assert positions == sorted(positions)


@pytest.mark.django_db
def test_a_repeated_stream_stands_or_falls_with_its_first_append():
    with transaction.atomic():
        store.append("s", _events("old"), expected_version=Expect.ANY)
        outcomes = store.append_batch([Append("s", _events("a"), Expect.NO_STREAM),
                                       Append("t", _events("b"), Expect.ANY),
                                       Append("s", _events("c"), Expect.ANY)])
    assert [o.conflict is not None for o in outcomes] == [True, False, True]
    assert [e.type for e in store.read_stream("s")] == ["old"]


@pytest.mark.django_db
@pytest.mark.parametrize("later", [Expect.NO_STREAM, 5])
def test_a_repeated_stream_with_an_impossible_expectation_is_refused_whole(later):
    with transaction.atomic(), pytest.raises(ValueError, match="again"):
        store.append_batch([Append("s", _events("a"), Expect.NO_STREAM),
                            Append("s", _events("b"), later)])
    assert store.stream_version("s") == 0


@pytest.mark.django_db
def test_empty_parts_and_empty_batches_write_nothing():
    with transaction.atomic():
        assert store.append_batch([]) == []
        (outcome,) = store.append_batch([Append("s", [], Expect.NO_STREAM)])
    assert outcome.recorded == [] and outcome.conflict is None
    assert store.stream_version("s") == 0


@pytest.mark.django_db(transaction=True)
def test_append_batch_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside transaction.atomic"):
        store.append_batch([Append("s", _events("a"), Expect.ANY)])


@pytest.mark.django_db(transaction=True)
def test_a_batch_waits_for_the_append_lock_so_readers_skip_nothing():
    """Gap safety: a batch that starts while a single append is open commits after it."""
    with transaction.atomic():
        store.append("warmup", _events("e"), expected_version=Expect.ANY)
    start = store.last_position()
    slow_appended, release_slow = threading.Event(), threading.Event()

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                store.append("slow", _events("late"), expected_version=Expect.ANY)
                slow_appended.set()
                release_slow.wait(timeout=30)
        finally:
            connections.close_all()

    def batch_writer() -> None:
        try:
            with transaction.atomic():
                store.append_batch([Append(f"fast-{i}", _events("early"), Expect.NO_STREAM)
                                    for i in range(50)])
        finally:
            connections.close_all()

    slow = threading.Thread(target=slow_writer)
    slow.start()
    assert slow_appended.wait(timeout=10)
    fast = threading.Thread(target=batch_writer)
    fast.start()
    wait_for(lambda: not fast.is_alive() or waiting_on_lock("advisory"), what="batch append")
    seen = [e.position for e in store.read_all(after=start)]
    checkpoint = seen[-1] if seen else start
    release_slow.set()
    slow.join(timeout=30)
    fast.join(timeout=30)
    seen += [e.position for e in store.read_all(after=checkpoint)]
    everything = [e.position for e in store.read_all(after=start)]
    assert len(everything) == 51
    assert seen == everything, "the follower skipped an event that committed late"


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_claiming_the_same_new_stream_store_it_once():
    barrier = threading.Barrier(4)
    results: list[list[bool]] = []

    def writer(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                outcomes = store.append_batch([
                    Append("shared", [NewEvent("claim", {"by": n})], Expect.NO_STREAM),
                    Append(f"own-{n}", _events("e"), Expect.NO_STREAM),
                ])
            results.append([o.conflict is None for o in outcomes])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [[False, True]] * 3 + [[True, True]]
    assert len(store.read_stream("shared")) == 1
    assert all(store.stream_version(f"own-{n}") == 1 for n in range(4))


@pytest.mark.django_db(transaction=True)
def test_a_row_written_around_the_lock_is_still_never_duplicated():
    """The unique (stream, version) index has the final word: a row inserted without the
    append lock (by hand, say) and committed while a batch writes the same version makes
    that stream a conflict, and the batch's other streams are written."""
    from clawdbot.eventstore.models import Event

    inserted, release = threading.Event(), threading.Event()
    results: list[list[bool]] = []

    def by_hand() -> None:
        try:
            with transaction.atomic():
                Event.objects.create(stream_id="contested", version=1, type="by-hand", data={})
                inserted.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    def batch() -> None:
        try:
            with transaction.atomic():
                outcomes = store.append_batch([
                    Append("contested", _events("batch"), Expect.NO_STREAM),
                    Append("bystander", _events("batch"), Expect.NO_STREAM)])
            results.append([o.conflict is None for o in outcomes])
        finally:
            connections.close_all()

    hand = threading.Thread(target=by_hand)
    hand.start()
    assert inserted.wait(timeout=10)
    writer = threading.Thread(target=batch)
    writer.start()
    wait_for(lambda: not writer.is_alive() or waiting_on_lock("transactionid"),
             what="batch blocked")
    release.set()
    hand.join(timeout=30)
    writer.join(timeout=30)
    assert results == [[False, True]]
    assert [e.type for e in store.read_stream("contested")] == ["by-hand"]
    assert [e.type for e in store.read_stream("bystander")] == ["batch"]


AWKWARD_DATA = {
    "text": 'quote " backslash \\ tab \t newline \n brace { comma , é 漢 😀',
    "big": 2**70, "negative": -(2**63) - 1, "float": 0.1, "nested": [{"a": [None, True]}],
    7: "a number key",
}


@pytest.mark.django_db
def test_awkward_stream_ids_and_data_are_stored_exactly_as_json_reads_them():
    awkward_stream = 'id with "quotes", {braces}, \\ and NULL'
    with transaction.atomic():
        outcomes = store.append_batch([
            Append(awkward_stream, [NewEvent("t", AWKWARD_DATA, {"k": "v"})], Expect.NO_STREAM),
            Append("NULL", [NewEvent("t", {"n": 1})], Expect.NO_STREAM),
        ])
    assert [o.conflict for o in outcomes] == [None, None]
    stored = store.read_stream(awkward_stream)[0]
    # JSON turns the number key into a string; every other value comes back unchanged.
    assert stored.data == {**{k: v for k, v in AWKWARD_DATA.items() if k != 7}, "7": "a number key"}
    assert stored.metadata == {"k": "v"}
    assert store.stream_version("NULL") == 1


@pytest.mark.django_db
def test_data_json_cannot_write_is_refused_and_nothing_is_written():
    from datetime import UTC, datetime

    with pytest.raises(TypeError, match="datetime"), transaction.atomic():
        store.append_batch([
            Append("fine", _events("e"), Expect.NO_STREAM),
            Append("dated", [NewEvent("t", {"at": datetime.now(UTC)})], Expect.NO_STREAM),
        ])
    assert store.stream_version("fine") == store.stream_version("dated") == 0


@pytest.mark.django_db
@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_a_number_json_has_no_form_for_is_refused_and_a_null_is_kept(number):
    from django.db import DataError

    with transaction.atomic():
        store.append_batch([Append("nulls", [NewEvent("t", {"n": None, "l": [None]})],
                                   Expect.NO_STREAM)])
    assert store.read_stream("nulls")[0].data == {"n": None, "l": [None]}
    with pytest.raises(DataError), transaction.atomic():
        store.append_batch([Append("nan", [NewEvent("t", {"n": number})], Expect.NO_STREAM)])
    assert store.stream_version("nan") == 0
