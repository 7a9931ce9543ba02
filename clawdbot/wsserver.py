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

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing, pause_reading, abort, ...
        return getattr(self._transport, name)


class CoalescedWebSocketProtocol(WebSocketsSansIOProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport = CoalescedWrites(self.transport)  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        """A message framed beforehand goes out as it is, when nothing could make its bytes
        differ (no compression negotiated, no fragmented message under way) and the socket
        is open and writable; anything else takes uvicorn's way, errors included."""
        frame = message.get(FRAME_KEY)
        conn = self.conn
        if (frame is not None and message["type"] == "websocket.send"
                and self.writable.is_set() and self.handshake_complete
                and self.initial_response is None and not self.close_sent
                and not self.disconnected and conn.state is State.OPEN
                and not conn.extensions and not conn.expect_continuation_frame):
            self.transport.write(frame)
            return
        await super().send(message)
