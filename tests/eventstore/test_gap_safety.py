"""A reader that follows the global position never skips an append that commits late."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction

from clawdbot.eventstore import store
from clawdbot.eventstore.store import Expect, NewEvent
from tests.helpers import wait_for, waiting_on_lock

pytestmark = pytest.mark.django_db(transaction=True)


def test_reader_never_skips_an_append_that_commits_after_a_later_one():
    with transaction.atomic():
        store.append("warmup", [NewEvent("e", {})], expected_version=Expect.ANY)
    start = store.last_position()
    slow_appended, release_slow = threading.Event(), threading.Event()

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                store.append("slow", [NewEvent("late", {})], expected_version=Expect.ANY)
                slow_appended.set()
                release_slow.wait(timeout=30)
        finally:
            connections.close_all()

    def fast_writer() -> None:
        try:
            with transaction.atomic():
                store.append("fast", [NewEvent("early", {})], expected_version=Expect.ANY)
        finally:
            connections.close_all()

    slow = threading.Thread(target=slow_writer)
    slow.start()
    assert slow_appended.wait(timeout=10)
    fast = threading.Thread(target=fast_writer)
    fast.start()
    # The fast append has either committed already or waits behind the open one.
    wait_for(lambda: not fast.is_alive() or waiting_on_lock("advisory"), what="fast append")

    seen = [e.position for e in store.read_all(after=start)]  # the slow one is still open
    checkpoint = seen[-1] if seen else start
    release_slow.set()
    slow.join(timeout=30)
    fast.join(timeout=30)
    seen += [e.position for e in store.read_all(after=checkpoint)]

    everything = [e.position for e in store.read_all(after=start)]
    assert len(everything) == 2
    assert seen == everything, "the follower skipped an event that committed late"
