"""WebSocket /ws/milestones/: catch-up after ?after=P, then live, no gap and no repeat."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from clawdbot.asgi import application
from feed_app.broadcast import GROUP
from tests.factories import EnvelopeFactory
from tests.feed.conftest import IngestClient

pytestmark = pytest.mark.django_db(transaction=True)


def _accept(client: IngestClient, count: int = 1) -> list[dict]:
    envelopes = [EnvelopeFactory() for _ in range(count)]
    for envelope in envelopes:
        assert client.send(envelope).json()["status"] == "accepted"
    return envelopes


async def _connect(query: str = "") -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, f"/ws/milestones/{query}")
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _receive(communicator: WebsocketCommunicator, count: int) -> list[dict]:
    return [await communicator.receive_json_from(timeout=5) for _ in range(count)]


def test_catch_up_sends_every_stored_milestone_after_the_position_in_order():
    client = IngestClient()
    envelopes = _accept(client, 3)

    async def scenario() -> list[dict]:
        communicator = await _connect("?after=0")
        messages = await _receive(communicator, 3)
        assert await communicator.receive_nothing()
        await communicator.disconnect()
        return messages

    messages = async_to_sync(scenario)()
    assert [m["type"] for m in messages] == ["milestone"] * 3
    assert [m["event"] for m in messages] == [e["event"] for e in envelopes]
    positions = [m["position"] for m in messages]
    assert positions == sorted(positions)


def test_catch_up_starts_strictly_after_the_given_position():
    client = IngestClient()
    _accept(client, 3)

    async def scenario() -> list[dict]:
        first = await _connect("?after=0")
        (one, two, three) = await _receive(first, 3)
        await first.disconnect()
        again = await _connect(f"?after={two['position']}")
        messages = await _receive(again, 1)
        assert await again.receive_nothing()
        await again.disconnect()
        return [three, *messages]

    three, resent = async_to_sync(scenario)()
    assert resent == three


def test_live_milestone_reaches_a_connected_client():
    client = IngestClient()

    async def scenario() -> dict:
        communicator = await _connect()
        envelope = EnvelopeFactory()
        await sync_to_async(client.send)(envelope)
        (message,) = await _receive(communicator, 1)
        await communicator.disconnect()
        return message | {"sent": envelope}

    message = async_to_sync(scenario)()
    assert message["event"] == message["sent"]["event"]
    assert message["idempotencyKey"] == message["sent"]["idempotencyKey"]


def test_duplicate_never_broadcasts():
    client = IngestClient()
    envelope = EnvelopeFactory()

    async def scenario() -> None:
        communicator = await _connect()
        await sync_to_async(client.send)(envelope)
        assert (await sync_to_async(client.send)(envelope)).json()["status"] == "duplicate"
        await _receive(communicator, 1)
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_live_message_already_sent_in_the_catch_up_is_not_repeated():
    client = IngestClient()
    _accept(client, 2)

    async def scenario() -> list[dict]:
        communicator = await _connect("?after=0")
        caught_up = await _receive(communicator, 2)
        # As if the second milestone's broadcast had been queued during the catch-up.
        await get_channel_layer().group_send(
            GROUP, {"type": "milestone.live", "message": caught_up[1]}
        )
        envelope = EnvelopeFactory()
        await sync_to_async(client.send)(envelope)
        live = await _receive(communicator, 1)
        assert await communicator.receive_nothing()
        await communicator.disconnect()
        return caught_up + live

    messages = async_to_sync(scenario)()
    positions = [m["position"] for m in messages]
    assert positions == sorted(set(positions))


def test_reconnect_with_the_last_position_has_no_gap_and_no_repeat():
    client = IngestClient()
    _accept(client, 2)

    async def scenario() -> list[int]:
        first = await _connect("?after=0")
        seen = [m["position"] for m in await _receive(first, 2)]
        await first.disconnect()
        await sync_to_async(_accept)(client, 3)  # while the client is away
        second = await _connect(f"?after={seen[-1]}")
        seen += [m["position"] for m in await _receive(second, 3)]
        await sync_to_async(_accept)(client, 1)  # live again
        seen += [m["position"] for m in await _receive(second, 1)]
        assert await second.receive_nothing()
        await second.disconnect()
        return seen

    seen = async_to_sync(scenario)()
    assert len(seen) == 6 and seen == sorted(set(seen))


@pytest.mark.parametrize("query", ["?after=abc", "?after=-3"])
def test_malformed_after_closes_the_socket(query):
    async def scenario() -> bool:
        communicator = WebsocketCommunicator(application, f"/ws/milestones/{query}")
        connected, _ = await communicator.connect()
        await communicator.disconnect()
        return connected

    assert async_to_sync(scenario)() is False


def _store_without_broadcast(count: int) -> list[int]:
    from django.db import transaction

    from clawdbot.eventstore import projections
    from clawdbot.eventstore.store import Expect, NewEvent

    positions = []
    for _ in range(count):
        envelope = EnvelopeFactory()
        data = {"idempotencyKey": envelope["idempotencyKey"], "sentAtUtc": None,
                "scheme": "legacy", "event": envelope["event"]}
        with transaction.atomic():
            (event,) = projections.record(f"feed-ingest-{envelope['idempotencyKey']}",
                                          [NewEvent("feed.milestone_accepted", data)],
                                          expected_version=Expect.NO_STREAM)
        positions.append(event.position)
    return positions


def test_a_lost_or_reordered_broadcast_leaves_no_gap():
    async def scenario() -> tuple[list[int], list[int]]:
        communicator = await _connect()
        stored = await sync_to_async(_store_without_broadcast)(3)
        # Only the last milestone's broadcast arrives: the first two were lost or late.
        last = {"type": "milestone", "position": stored[-1], "event": {}}
        await get_channel_layer().group_send(GROUP, {"type": "milestone.live", "message": last})
        received = [m["position"] for m in await _receive(communicator, 3)]
        assert await communicator.receive_nothing()
        await communicator.disconnect()
        return stored, received

    stored, received = async_to_sync(scenario)()
    assert received == stored
