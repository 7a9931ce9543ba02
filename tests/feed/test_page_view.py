"""The page at / without a browser: what it renders and where its live socket starts."""

from __future__ import annotations

import json
import re

import pytest

from feed_app import selectors
from feed_app.models import FeedItem
from tests.factories import EnvelopeFactory

pytestmark = pytest.mark.django_db


def _rendered(client) -> tuple[set[int], int]:
    page = client.get("/").content.decode()
    shown = {int(p) for p in re.findall(r'data-position="(\d+)"', page)}
    config = re.search(r'<script id="live-config" type="application/json">(.*?)</script>', page)
    assert config is not None
    return shown, json.loads(config[1])["after"]


def test_a_milestone_committed_while_the_page_renders_is_not_lost(client, ingest, monkeypatch):
    ingest.send(EnvelopeFactory())
    last_position = selectors.feed_last_position

    def racing_last_position() -> int:
        ingest.send(EnvelopeFactory())  # commits between the page's reads
        return last_position()

    monkeypatch.setattr(selectors, "feed_last_position", racing_last_position)
    shown, after = _rendered(client)
    # Every stored milestone is on the page or will come over the socket (?after=...).
    for position in FeedItem.objects.values_list("position", flat=True):
        assert position in shown or position > after
    assert all(position <= after for position in shown)  # and none comes twice
