"""The web server closes a WebSocket whose client sends a message past 64 KiB.

Clients of the live feed have nothing to say (SPEC §6); without a limit the server would
take (and parse as JSON) a message of up to its default 16 MiB from anyone.
"""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.liveserver import asgi_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_message_past_the_limit_closes_the_socket_with_1009():
    with asgi_server() as server:
        url = f"{server.replace('http', 'ws', 1)}/ws/milestones/"
        with connect(url, open_timeout=10, max_size=None) as ws:
            ws.send('"' + "x" * 60_000 + '"')  # ignored; the socket stays open
            ws.ping().wait(timeout=10)
            ws.send('"' + "x" * 70_000 + '"')  # past the 64 KiB limit
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
