from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from clawdbot.eventstore import store
from clawdbot.eventstore.store import ConcurrencyError, Expect, NewEvent

pytestmark = pytest.mark.django_db


def _append(stream: str, *types: str, expected=Expect.ANY):
    with transaction.atomic():
        return store.append(
            stream, [NewEvent(t, {"n": i}) for i, t in enumerate(types)], expected_version=expected
        )


def test_append_numbers_versions_per_stream_and_positions_globally():
    first = _append("order-1", "created", "paid", expected=Expect.NO_STREAM)
    other = _append("order-2", "created")
    third = _append("order-1", "shipped", expected=2)

    assert [e.version for e in first + third] == [1, 2, 3]
    assert other[0].version == 1
    positions = [e.position for e in first + other + third]
    assert positions == sorted(positions) and len(set(positions)) == 4
    assert [e.type for e in store.read_stream("order-1")] == ["created", "paid", "shipped"]
    assert store.read_stream("order-1")[1].data == {"n": 1}


def test_wrong_expected_version_raises_and_writes_nothing():
    _append("s", "a")
    with transaction.atomic():
        with pytest.raises(ConcurrencyError, match="at version 1, expected 0"):
            store.append("s", [NewEvent("b", {}), NewEvent("c", {})], expected_version=0)
        # the caller's transaction is still usable after the refusal
        store.append("t", [NewEvent("x", {})], expected_version=Expect.NO_STREAM)
    assert [e.type for e in store.read_stream("s")] == ["a"]
    assert store.stream_version("t") == 1


def test_expected_version_ahead_of_stream_is_refused():
    _append("s", "a")
    with transaction.atomic(), pytest.raises(ConcurrencyError):
        store.append("s", [NewEvent("b", {})], expected_version=5)
    assert store.stream_version("s") == 1


def test_no_stream_refuses_an_existing_stream():
    _append("s", "a")
    with transaction.atomic(), pytest.raises(ConcurrencyError, match="no_stream"):
        store.append("s", [NewEvent("b", {}), NewEvent("c", {})], expected_version=Expect.NO_STREAM)
    assert store.stream_version("s") == 1


@pytest.mark.django_db(transaction=True)
def test_append_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside transaction.atomic"):
        store.append("s", [NewEvent("a", {})], expected_version=Expect.ANY)


def test_read_all_pages_in_position_order_and_filters_types():
    for i in range(7):
        _append(f"s-{i % 3}", "even" if i % 2 == 0 else "odd")
    pages = list(store.iter_all(batch_size=3))
    assert [len(p) for p in pages] == [3, 3, 1]
    flat = [e.position for p in pages for e in p]
    assert flat == sorted(flat)
    assert {e.type for e in store.read_all(types=["odd"])} == {"odd"}
    assert len(store.read_all(after=flat[4])) == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_at_one_expected_version_let_exactly_one_win():
    _append("race", "opened")
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def contender(i: int) -> None:
        barrier.wait()
        try:
            with transaction.atomic():
                store.append("race", [NewEvent("claimed", {"by": i})], expected_version=1)
            outcomes.append("won")
        except ConcurrencyError:
            outcomes.append("lost")
        finally:
            connection.close()

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    assert [e.version for e in store.read_stream("race")] == [1, 2]
