"""WebSocket /ws/milestones/: catch-up after ?after=P, then live, no gap and no repeat."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator

from clawdbot.asgi import application
from clawdbot.wsserver import text_message
from feed_app import live
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


def test_duplicate_never_reaches_the_socket():
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
        # As if the hub had read the second milestone while the catch-up was being sent.
        _hand_out(live.Batch(caught_up[0]["position"], (_frame(caught_up[1]),)))
        envelope = EnvelopeFactory()
        await sync_to_async(client.send)(envelope)
        after = await _receive(communicator, 1)
        assert await communicator.receive_nothing()
        await communicator.disconnect()
        return caught_up + after

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


def _frame(message: dict) -> live.Frame:
    text = json.dumps(message)
    return live.Frame(message["position"], text, text_message(text))


def _hand_out(batch: live.Batch) -> None:
    """What the hub does with a batch it read: every socket of this event loop gets it."""
    for subscriber in tuple(live.hub().subscribers):
        subscriber(batch)


def _store(count: int) -> list[int]:
    return [_stored_position(EnvelopeFactory()) for _ in range(count)]


def _stored_position(envelope: dict) -> int:
    from feed_app.models import FeedItem

    assert IngestClient().send(envelope).json()["status"] == "accepted"
    return FeedItem.objects.get(idempotency_key=envelope["idempotencyKey"]).position


def test_a_batch_past_the_sockets_position_is_filled_in_from_the_database():
    # The hub stops listening (its notifications are lost), three milestones are stored,
    # and only a batch holding the last one arrives: the socket sends all three.
    async def scenario() -> tuple[list[int], list[int]]:
        communicator = await _connect()
        await live.hub().stop()
        stored = await sync_to_async(_store)(3)
        last = {"type": "milestone", "position": stored[-1], "event": {}}
        _hand_out(live.Batch(stored[1], (_frame(last),)))
        received = [m["position"] for m in await _receive(communicator, 3)]
        assert await communicator.receive_nothing()
        await communicator.disconnect()
        return stored, received

    stored, received = async_to_sync(scenario)()
    assert received == stored


def test_a_listener_that_lost_its_connection_sends_what_was_committed_meanwhile():
    async def scenario() -> tuple[list[int], list[int]]:
        communicator = await _connect()
        await sync_to_async(_terminate_listeners)()
        stored = await sync_to_async(_store)(2)  # while the listener reconnects
        received = [m["position"] for m in await _receive(communicator, 2)]
        stored += await sync_to_async(_store)(1)  # and after
        received += [m["position"] for m in await _receive(communicator, 1)]
        assert await communicator.receive_nothing()
        await communicator.disconnect()
        return stored, received

    stored, received = async_to_sync(scenario)()
    assert received == stored


def test_a_wake_up_costs_one_read_per_process_whatever_the_number_of_sockets(monkeypatch):
    from feed_app import consumers

    reads = {"hub": 0, "socket": 0}
    hub_read, socket_read = live.Hub._read, consumers._frames_after

    async def counted_hub_read(self, conn):  # type: ignore[no-untyped-def]
        reads["hub"] += 1
        await hub_read(self, conn)

    async def counted_socket_read(position: int):  # type: ignore[no-untyped-def]
        reads["socket"] += 1
        return await socket_read(position)

    monkeypatch.setattr(live.Hub, "_read", counted_hub_read)
    monkeypatch.setattr(consumers, "_frames_after", counted_socket_read)

    async def scenario() -> list[list[int]]:
        sockets = [await _connect() for _ in range(40)]
        stored: list[int] = []
        received: list[list[int]] = [[] for _ in sockets]
        for _ in range(3):  # one commit, one NOTIFY, one wake-up each
            stored += await sync_to_async(_store)(1)
            for socket, got in zip(sockets, received, strict=True):
                got += [m["position"] for m in await _receive(socket, 1)]
        for socket in sockets:
            await socket.disconnect()
        return [stored, *received]

    stored, *received = async_to_sync(scenario)()
    assert all(got == stored for got in received)
    assert reads["socket"] == 0  # no socket read the database
    # One read per wake-up for the 40 sockets of the process (a notification that arrives
    # during a read costs one empty read more), not one per socket.
    assert 3 <= reads["hub"] <= 6


def test_milestones_committed_close_together_reach_the_sockets_in_one_batch(settings):
    # CLAWDBOT_LIVE_COALESCE_MS: after a read, the listener reads again no sooner than
    # that, so three milestones stored right after the first one go out as one batch (one
    # write per socket, not three). 1.5 s leaves the three stores ample time.
    settings.CLAWDBOT_LIVE_COALESCE_MS = 1500.0

    async def frames_seen(batches: list[live.Batch], count: int) -> None:
        while sum(len(batch.frames) for batch in batches) < count:
            await asyncio.sleep(0.01)

    async def scenario() -> tuple[list[int], list[int], list[list[int]]]:
        batches: list[live.Batch] = []
        hub = live.hub()
        await hub.subscribe(batches.append)
        try:
            first = await sync_to_async(_store)(1)
            await asyncio.wait_for(frames_seen(batches, 1), timeout=10)
            rest = await sync_to_async(_store)(3)
            await asyncio.wait_for(frames_seen(batches, 4), timeout=10)
        finally:
            hub.unsubscribe(batches.append)
        return first, rest, [[f.position for f in batch.frames] for batch in batches]

    first, rest, batches = async_to_sync(scenario)()
    assert batches == [first, rest]


def _terminate_listeners() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                       " WHERE datname = current_database() AND application_name = %s",
                       [live.APPLICATION_NAME])
        assert cursor.fetchall(), "no listener connection to cut"


@pytest.mark.parametrize("origin", [b"http://127.0.0.1:8000", b"http://localhost",
                                    b"https://console.example.org"])
def test_a_page_of_this_site_or_a_listed_origin_opens_the_socket(settings, origin):
    settings.CLAWDBOT_WS_ORIGINS = ["https://console.example.org"]
    assert async_to_sync(_opens)([(b"origin", origin)]) is True


@pytest.mark.parametrize("origin", [b"http://evil.example", b"null", b"http://127.0.0.1.evil.example",
                                    b"http://console.example.org"])
def test_a_page_of_another_site_cannot_open_the_socket(settings, origin):
    settings.CLAWDBOT_WS_ORIGINS = ["https://console.example.org"]
    assert async_to_sync(_opens)([(b"origin", origin)]) is False


def test_a_client_without_an_origin_is_no_browser_page_and_connects():
    assert async_to_sync(_opens)([]) is True


async def _opens(headers: list[tuple[bytes, bytes]]) -> bool:
    communicator = WebsocketCommunicator(application, "/ws/milestones/", headers=headers)
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return connected


async def _open_from(address: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/milestones/")
    communicator.scope["client"] = (address, 5000)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _refused(communicator: WebsocketCommunicator) -> str:
    """The reason of a socket closed right after its handshake with 1013."""
    closed = await communicator.receive_output(timeout=5)
    assert closed["type"] == "websocket.close" and closed["code"] == 1013, closed
    return closed["reason"]


def test_sockets_are_capped_per_address_and_per_process_with_the_reason(settings):
    """Past the caps a new socket is closed at once with 1013 and a reason; the sockets
    already open keep working, and closing one frees its slot."""
    from feed_app import consumers

    settings.CLAWDBOT_WS_MAX_PER_ADDRESS = 2
    settings.CLAWDBOT_WS_MAX_PER_PROCESS = 3
    client = IngestClient()

    async def scenario() -> None:
        a1 = await _open_from("203.0.113.1")
        a2 = await _open_from("203.0.113.1")
        assert consumers.open_sockets() == (2, 1)
        assert "this address" in await _refused(await _open_from("203.0.113.1"))
        b1 = await _open_from("203.0.113.2")
        assert consumers.open_sockets() == (3, 2)
        assert "limit of live sockets" in await _refused(await _open_from("203.0.113.2"))
        await sync_to_async(_accept)(client)
        for live_socket in (a1, a2, b1):  # the open ones still get the live feed
            assert (await live_socket.receive_json_from(timeout=5))["type"] == "milestone"
        await a2.disconnect()
        a4 = await _open_from("203.0.113.1")
        assert consumers.open_sockets() == (3, 2)
        for c in (a1, a4, b1):
            await c.disconnect()
        assert consumers.open_sockets() == (0, 0)

    async_to_sync(scenario)()


def test_a_consumer_too_slow_to_keep_up_is_closed_and_resumes_without_a_gap(monkeypatch):
    """A socket whose queue of live batches is full is closed with 1013 (try again later);
    reconnecting with ?after= the last position it got loses nothing."""
    from feed_app import consumers

    monkeypatch.setattr(consumers, "MAX_QUEUED_BATCHES", 0)
    client = IngestClient()

    async def scenario() -> None:
        slow = await _connect("?after=0")
        assert await slow.receive_nothing()
        envelopes = await sync_to_async(_accept)(client, 2)
        closed = await slow.receive_output(timeout=5)
        assert closed["type"] == "websocket.close" and closed["code"] == 1013
        monkeypatch.setattr(consumers, "MAX_QUEUED_BATCHES", 1000)
        again = await _connect("?after=0")
        got = [m["event"] for m in await _receive(again, 2)]
        assert got == [e["event"] for e in envelopes]
        await again.disconnect()

    async_to_sync(scenario)()


def _frame_positions(wire: bytes) -> list[int]:
    """The positions of the unmasked text frames in ``wire`` (server to client)."""
    positions, at = [], 0
    while at < len(wire):
        assert wire[at] == 0x81, "one text frame per milestone"
        length, at = wire[at + 1] & 0x7F, at + 2
        if length == 126:
            length, at = int.from_bytes(wire[at:at + 2], "big"), at + 2
        elif length == 127:
            length, at = int.from_bytes(wire[at:at + 8], "big"), at + 8
        positions.append(json.loads(wire[at:at + length])["position"])
        at += length
    return positions


def test_written_at_once_or_queued_when_the_socket_cannot_take_it_no_gap_no_repeat():
    # Under the project's server, a socket that is idle and up to date is written in the
    # listener's turn (the scope's WRITE_FRAMED); one that cannot take bytes as they are
    # (not writable, closing) says so and the batch goes through the socket's queue and
    # ASGI send. Whatever the mix, the socket carries every milestone once, in order.
    from clawdbot.wsserver import WRITE_FRAMED

    answers = iter([True, False, True, True, False, False, True] * 10)
    wire: list[tuple[str, int]] = []  # what reached the socket, in the order it did

    def write_framed(data: bytes) -> bool:
        taken = next(answers)
        if taken:
            wire.extend(("at once", p) for p in _frame_positions(data))
        return taken

    async def arrived(count: int) -> None:
        async with asyncio.timeout(10):
            while len(wire) < count:
                await asyncio.sleep(0.01)

    async def scenario() -> list[int]:
        incoming: asyncio.Queue[dict] = asyncio.Queue()
        accepted = asyncio.Event()

        async def send(message: dict) -> None:
            if message["type"] == "websocket.accept":
                accepted.set()
            elif message["type"] == "websocket.send":
                wire.append(("sent", json.loads(message["text"])["position"]))

        scope = {"type": "websocket", "path": "/ws/milestones/", "raw_path": b"/ws/milestones/",
                 "query_string": b"", "headers": [], "subprotocols": [],
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
                 "extensions": {WRITE_FRAMED: write_framed}}
        await incoming.put({"type": "websocket.connect"})
        app = asyncio.create_task(application(scope, incoming.get, send))
        async with asyncio.timeout(10):
            await accepted.wait()
        stored: list[int] = []
        for _ in range(7):
            stored += await sync_to_async(_store)(1)
            await arrived(len(stored))
        stored += await sync_to_async(_store)(5)  # close together: batches of several
        await arrived(len(stored))
        await incoming.put({"type": "websocket.disconnect", "code": 1000})
        await app
        return stored

    stored = async_to_sync(scenario)()
    assert [position for _how, position in wire] == stored
    assert {how for how, _position in wire} == {"at once", "sent"}
