"""The dispatcher thread in this process, with an injected transport."""

from __future__ import annotations

import threading

import psycopg
import pytest

from orchestrator_app import dispatcher
from orchestrator_app.models import Delivery, Status
from orchestrator_app.services.emit import milestone_emit
from tests.factories import MilestoneEventFactory
from tests.helpers import wait_for
from tests.orchestrator.factories import TargetFactory


@pytest.mark.django_db(transaction=True)
def test_dispatcher_started_while_the_database_refuses_listen_still_delivers(
        monkeypatch, transport):
    real, calls = dispatcher._listen, []

    def refused_once() -> psycopg.Connection:
        calls.append(1)
        if len(calls) == 1:
            raise psycopg.OperationalError("connection refused (database starting)")
        return real()

    monkeypatch.setattr(dispatcher, "_listen", refused_once)
    TargetFactory(name="t")
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.dispatch_forever, daemon=True,
                              kwargs={"stop": stop, "transport": transport})
    thread.start()
    key = milestone_emit(event=MilestoneEventFactory()).idempotency_key
    try:
        wait_for(lambda: Delivery.objects.get(idempotency_key=key).status == Status.DELIVERED,
                 what="the delivery, by a dispatcher that outlived a refused LISTEN")
        wait_for(lambda: len(calls) >= 2, what="the dispatcher listening again")
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
