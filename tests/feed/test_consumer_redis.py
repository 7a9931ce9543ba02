"""The live broadcast through the Redis channel layer (several processes share it)."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import override_settings

from tests.factories import EnvelopeFactory
from tests.feed.conftest import IngestClient
from tests.feed.test_consumer import _connect, _receive

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def _redis_answers(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379),
                                      timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


pytestmark = [
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not _redis_answers(REDIS_URL), reason=f"no Redis answers at {REDIS_URL}"),
]

REDIS_LAYER = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": f"clawdbot-test-{os.getpid()}"},
    }
}


@override_settings(CHANNEL_LAYERS=REDIS_LAYER)
def test_live_milestone_reaches_a_client_through_redis():
    client = IngestClient()
    envelope = EnvelopeFactory()

    async def scenario() -> dict:
        communicator = await _connect()
        await sync_to_async(client.send)(envelope)
        (message,) = await _receive(communicator, 1)
        await communicator.disconnect()
        return message

    assert async_to_sync(scenario)()["event"] == envelope["event"]
