"""What an attempt's record keeps of the headers it sent and received.

Events are kept forever and shown in the admin, so the request headers are recorded with
their signatures shortened (enough to tell two apart, not enough to replay one) and any
header that looks like a credential replaced; a stranger's response headers are recorded
capped in number and length, so a hostile target cannot grow the log.
"""

from __future__ import annotations

from collections.abc import Mapping

from clawdbot.contract import LEGACY_SIGNATURE_HEADER, WEBHOOK_SIGNATURE_HEADER

SIGNATURES = frozenset({LEGACY_SIGNATURE_HEADER, WEBHOOK_SIGNATURE_HEADER})
CREDENTIAL_WORDS = ("authorization", "cookie", "secret", "token", "password", "api-key")
REDACTED = "[redacted]"
SIGNATURE_SHOWN = 12
MAX_RESPONSE_HEADERS = 40
MAX_HEADER_CHARS = 300


def _clean(text: str, limit: int) -> str:
    return str(text)[:limit].replace("\x00", "")


def request_headers_recorded(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` as sent, signatures shortened and credentials replaced."""
    recorded = {}
    for name, value in headers.items():
        low = name.lower()
        if low in SIGNATURES:
            value = f"{value[:SIGNATURE_SHOWN]}…{REDACTED}"
        elif any(word in low for word in CREDENTIAL_WORDS):
            value = REDACTED
        recorded[low] = _clean(value, MAX_HEADER_CHARS)
    return recorded


def response_headers_recorded(headers: Mapping[str, str]) -> dict[str, str]:
    """The first ``MAX_RESPONSE_HEADERS`` headers of an answer, each value capped."""
    recorded = {}
    for name, value in list(headers.items())[:MAX_RESPONSE_HEADERS]:
        low = _clean(name, 100).lower()
        recorded[low] = REDACTED if low == "set-cookie" else _clean(value, MAX_HEADER_CHARS)
    return recorded
