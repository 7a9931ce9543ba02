"""uvicorn's WebSocket protocol with the writes of one event-loop turn sent together.

``clawdbot.serve`` passes ``--ws clawdbot.wsserver:CoalescedWebSocketProtocol`` to uvicorn
(its ``--ws`` takes an import path). Everything is uvicorn's sans-I/O WebSocket protocol
except the transport it writes to: the frames one socket is sent during a turn of the
event loop (a live batch of several milestones, a catch-up page) leave in one ``write``,
at the end of that turn, instead of one system call each.

Why: with 1,000 live sockets, the web processes' CPU went mostly to one ``write`` per
frame (py-spy: 50 % of samples on that line, and 46 % of the machine in the kernel);
docs/PERFORMANCE.md has the profile. The order of bytes on a socket is unchanged, a close
sends what is pending first, and nothing waits longer than the current turn.

The live feed sends each milestone to every socket, so its messages come framed once
(``text_message``): the protocol writes those bytes instead of framing the same text again
per socket, when the socket is in the plain state where that is exactly what it would
write. Per-message compression is off (``clawdbot.serve``): it would deflate every
milestone once per socket.

The live feed's listener goes one step further (``WRITE_FRAMED``): the scope's
extensions carry a plain function that writes bytes framed beforehand straight to the
socket, when the socket is in that same plain state and the bytes fit under its
high-water mark, and says whether it did. A batch of milestones then reaches every
up-to-date socket of the process within the listener's own turn, one ``write`` per
socket, without waking a task per socket or going through the ASGI ``send`` coroutine
(docs/PERFORMANCE.md, the realtime profile).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

#: The key of an ASGI ``websocket.send`` message that carries the message's frame as it
#: goes on the wire. Servers other than this one ignore it and frame ``text`` themselves.
FRAME_KEY = "clawdbot.frame"
#: The scope extension holding ``write_framed(data: bytes) -> bool`` (see the module).
WRITE_FRAMED = "clawdbot.write_framed"


def text_message(text: str) -> dict[str, Any]:
    """The ASGI message sending ``text``, framed once for every socket it goes to (a frame
    from server to client is not masked, so it is the same bytes on each socket)."""
    frame = Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
    return {"type": "websocket.send", "text": text, FRAME_KEY: frame}


class CoalescedWrites:
    """A transport whose ``write`` calls of one loop turn go out as one ``write``."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []
        self._call_soon = asyncio.get_running_loop().call_soon

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(data)

    def write_now(self, data: bytes) -> None:
        """Write ``data`` at once, or behind what this turn has pending (order is kept)."""
        if self._pending:
            self._pending.append(data)
        elif not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing, pause_reading, abort, ...
        return getattr(self._transport, name)


class CoalescedWebSocketProtocol(WebSocketsSansIOProtocol):
    transport: CoalescedWrites  # type: ignore[assignment]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport = CoalescedWrites(self.transport)  # type: ignore[arg-type]

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # none when the handshake was refused
        if scope is not None:
            scope["extensions"][WRITE_FRAMED] = self.write_framed

    def _plain(self) -> bool:
        """Open, writable and plain: bytes framed beforehand are exactly what uvicorn would
        write (no compression negotiated, no fragmented message under way)."""
        conn = self.conn
        return (self.writable.is_set() and self.handshake_complete
                and self.initial_response is None and not self.close_sent
                and not self.disconnected and conn.state is State.OPEN
                and not conn.extensions and not conn.expect_continuation_frame
                and not self.transport.is_closing())

    def write_framed(self, data: bytes) -> bool:
        """Write frames built beforehand now, if the socket is plain and the bytes fit under
        the transport's high-water mark with what it holds already; False (nothing written)
        otherwise, for the caller to go through ``send``, which waits for a slow reader
        frame by frame. So a client that stops reading holds at most that much more here
        than through ``send``, however large the batch."""
        if (not self._plain() or self.transport.get_write_buffer_size() + len(data)
                > self.transport.get_write_buffer_limits()[1]):
            return False
        self.transport.write_now(data)
        return True

    async def send(self, message: Any) -> None:
        """A message framed beforehand goes out as it is when the socket is plain
        (``_plain``); anything else takes uvicorn's way, errors included."""
        frame = message.get(FRAME_KEY)
        if frame is not None and message["type"] == "websocket.send" and self._plain():
            self.transport.write(frame)
            return
        await super().send(message)
