from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.feed.factories import signed

INGEST = "/internal/milestones/ingest"


class IngestClient:
    """Posts raw bodies to the ingest endpoint, the way a sender does."""

    def __init__(self) -> None:
        self.client = Client(REMOTE_ADDR="203.0.113.7")

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> Any:
        headers = dict(headers or {})
        content_type = headers.pop("content-type", "application/json")
        return self.client.generic("POST", INGEST, body, content_type=content_type,
                                   headers=headers)

    def send(self, envelope: dict | None = None, **kwargs: Any) -> Any:
        return self.post(*signed(envelope, **kwargs))


@pytest.fixture
def ingest(db) -> IngestClient:
    return IngestClient()
