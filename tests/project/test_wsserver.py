"""clawdbot.wsserver: uvicorn's WebSocket protocol with a turn's writes joined, and frames
built once for many sockets.

A real uvicorn server on a real socket, running a small ASGI app that sends what each test
needs; the client is the ``websockets`` library, which checks every frame it reads.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import zlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from clawdbot.wsserver import (
    FRAME_KEY,
    WRITE_FRAMED,
    CoalescedWebSocketProtocol,
    CoalescedWrites,
    text_message,
)
from tests.helpers import wait_for

App = Callable[[Any, Any], Awaitable[None]]


def _app(script: Callable[..., Awaitable[None]], errors: list[BaseException]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        try:
            await script(send, scope)
        except BaseException as exc:  # what uvicorn answered the app, for the test to see
            errors.append(exc)
            return
        while (await receive())["type"] != "websocket.disconnect":
            pass
    return app


@contextmanager
def _server(script: Callable[..., Awaitable[None]], *, deflate: bool = False
            ) -> Iterator[tuple[str, list[BaseException]]]:
    errors: list[BaseException] = []
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(_app(script, errors), host="127.0.0.1", port=port,
                            ws=CoalescedWebSocketProtocol, ws_per_message_deflate=deflate,
                            lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=10, what="uvicorn to start")
        yield f"ws://127.0.0.1:{port}/", errors
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _texts(count: int) -> list[str]:
    # Sizes around the frame header's length steps (125 and 65,535 bytes), and non-ASCII.
    sizes = [0, 1, 125, 126, 127, 65_535, 65_536, 3]
    return [f"{i}:é" + "x" * sizes[i % len(sizes)] for i in range(count)]


def test_messages_sent_in_one_turn_arrive_intact_in_order_then_the_close():
    texts = _texts(40)

    async def script(send: Any, scope: Any) -> None:
        # Framed beforehand, framed by uvicorn, and binary, mixed in one turn; then a close
        # right behind them: a close must not overtake what is still pending.
        for i, text in enumerate(texts):
            if i % 3 == 0:
                await send(text_message(text))
            elif i % 3 == 1:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": text.encode()})
        await send({"type": "websocket.close", "code": 4001, "reason": "done"})

    with _server(script) as (url, errors), connect(url, max_size=None) as ws:
        received = [ws.recv(timeout=10) for _ in texts]
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert not errors
    assert received == [t if i % 3 != 2 else t.encode() for i, t in enumerate(texts)]
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "done")


def _raw_frames(url: str, count: int, extensions: str) -> list[tuple[int, bytes]]:
    """The first ``count`` frames as they come off the wire: (first header byte, payload)."""
    port = int(url.rsplit(":", 1)[1].strip("/"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      f"Sec-WebSocket-Extensions: {extensions}\r\n\r\n").encode())
        stream = sock.makefile("rb")
        status = stream.readline()
        assert b" 101 " in status, status
        while stream.readline() not in (b"\r\n", b""):
            pass
        frames = []
        for _ in range(count):
            first, second = stream.read(2)
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(stream.read(2), "big")
            elif length == 127:
                length = int.from_bytes(stream.read(8), "big")
            frames.append((first, stream.read(length)))
        return frames


@pytest.mark.parametrize("deflate", [True, False])
def test_a_frame_built_beforehand_goes_out_as_it_is_only_when_nothing_is_negotiated(deflate):
    # With permessage-deflate negotiated, the frame built beforehand (uncompressed) must not
    # be sent as it is: uvicorn compresses the message (RSV1 set, a short payload).
    text = "milestone " * 5_000

    async def script(send: Any, scope: Any) -> None:
        for _ in range(3):
            await send(text_message(text))

    with _server(script, deflate=deflate) as (url, errors):
        frames = _raw_frames(url, 3, "permessage-deflate; client_max_window_bits")
    assert not errors
    if deflate:
        assert all(first == 0xC1 and len(payload) < 1_000 for first, payload in frames)
        inflate = zlib.decompressobj(-15)  # one context for the socket, as negotiated
        assert [inflate.decompress(p + b"\x00\x00\xff\xff").decode()
                for _, p in frames] == [text] * 3
    else:
        assert frames == [(0x81, text.encode())] * 3


def test_a_frame_sent_after_the_close_is_refused_as_uvicorn_refuses_it():
    async def script(send: Any, scope: Any) -> None:
        await send({"type": "websocket.close", "code": 1000})
        await send(text_message("after the close"))

    with _server(script) as (url, errors), connect(url) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        wait_for(lambda: errors, timeout=10, what="the app to be answered")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    # uvicorn's own answer: the send is refused (RuntimeError, or ClientDisconnected when
    # the client's close came first); nothing is written after the close.
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError | OSError)


@pytest.mark.parametrize("deflate", [False, True])
def test_frames_written_at_once_arrive_in_order_and_are_refused_when_not_plain(deflate):
    # The scope's WRITE_FRAMED writes frames built beforehand straight to the socket, in
    # order with what ``send`` wrote. It refuses (False, nothing written) bytes past the
    # transport's high-water mark, anything once the socket is closed, and everything when
    # compression was negotiated (the bytes would differ); refused frames go through
    # ``send``, as the live feed sends them.
    texts = _texts(9)  # texts[4:8] hold 131 KiB, past asyncio's 64 KiB high-water mark
    answers: list[bool] = []

    async def script(send: Any, scope: Any) -> None:
        write_framed = scope["extensions"][WRITE_FRAMED]
        await send({"type": "websocket.send", "text": texts[0]})
        for group in (texts[1:2], texts[2:4], texts[4:8]):  # one frame, then several joined
            answers.append(write_framed(b"".join(text_message(t)[FRAME_KEY] for t in group)))
            if not answers[-1]:
                for text in group:
                    await send(text_message(text))
        await send(text_message(texts[8]))
        await send({"type": "websocket.close", "code": 1000})
        answers.append(write_framed(text_message("after the close")[FRAME_KEY]))

    with _server(script, deflate=deflate) as (url, errors), connect(url, max_size=None) as ws:
        received = [ws.recv(timeout=10) for _ in texts]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
    assert not errors
    assert received == texts
    assert answers == ([False] * 4 if deflate else [True, True, False, False])


class _Recording(asyncio.Transport):
    """A real socket's transport, with the writes that reach it counted."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self.inner = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))
        self.inner.write(data)

    def is_closing(self) -> bool:
        return self.inner.is_closing()

    def close(self) -> None:
        self.inner.close()


def test_the_writes_of_one_turn_reach_the_socket_as_one_write():
    async def scenario() -> tuple[list[bytes], bytes]:
        received = bytearray()
        done = asyncio.Event()

        async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received.extend(await reader.read())  # until the other side closes
            writer.close()
            done.set()

        server = await asyncio.start_server(peer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        recording = _Recording(writer.transport)  # type: ignore[arg-type]
        writes = CoalescedWrites(recording)
        for chunk in (b"one ", b"", b"two ", b"three "):  # one turn
            writes.write(chunk)
        assert recording.writes == []  # nothing yet: the turn has not ended
        await asyncio.sleep(0)  # the end of the turn (a yield, not a wait for time)
        writes.write(b"four ")  # the next turn, then closed within it
        writes.write(b"five")
        writes.close()
        await done.wait()
        server.close()
        await server.wait_closed()
        return recording.writes, bytes(received)

    writes, received = asyncio.run(scenario())
    assert writes == [b"one two three ", b"four five"]
    assert received == b"one two three four five"
