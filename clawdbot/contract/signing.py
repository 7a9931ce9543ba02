"""Both signature schemes of SPEC §3, for senders and receivers.

* Legacy: ``x-openclaw-signature`` is hex HMAC-SHA256 over the *parsed* body's canonical
  form, so it survives re-serialisation. ``x-openclaw-timestamp`` travels alongside but
  is not signed.
* Standard Webhooks v1: ``webhook-signature`` covers ``{id}.{timestamp}.{raw body}``, so
  the receiver must verify the exact bytes it received, and rejects stale timestamps.

Secrets come as comma-separated lists: the first signs, every one verifies, so a secret
can be rotated without stopping either side.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import secrets as _random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .canonical import canonical_json, parse_json

__all__ = [
    "LEGACY_SIGNATURE_HEADER",
    "LEGACY_TIMESTAMP_HEADER",
    "WEBHOOK_ID_HEADER",
    "WEBHOOK_SECRET_PREFIX",
    "WEBHOOK_SIGNATURE_HEADER",
    "WEBHOOK_TIMESTAMP_HEADER",
    "WEBHOOK_TOLERANCE_S",
    "SignatureError",
    "SignatureFailure",
    "envelope_bytes",
    "generate_legacy_secret",
    "generate_webhook_secret",
    "js_iso_timestamp",
    "legacy_sign",
    "legacy_verify",
    "parse_secret_list",
    "signed_headers",
    "webhook_sign",
    "webhook_verify",
]

LEGACY_SIGNATURE_HEADER = "x-openclaw-signature"
LEGACY_TIMESTAMP_HEADER = "x-openclaw-timestamp"
WEBHOOK_ID_HEADER = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER = "webhook-signature"
WEBHOOK_SECRET_PREFIX = "whsec_"
#: Replay window of the Standard Webhooks scheme, in seconds, either side of now.
WEBHOOK_TOLERANCE_S = 300

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_UNIX_SECONDS = re.compile(r"[0-9]{1,15}", re.ASCII)
_FROM_BODY: Any = object()

_compact_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_compact_ascii_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


class SignatureFailure(StrEnum):
    """Why signature headers do not prove a request: a stable name for each case."""

    MISSING_HEADER = "missing_header"
    MALFORMED_TIMESTAMP = "malformed_timestamp"
    TIMESTAMP_OUT_OF_TOLERANCE = "timestamp_out_of_tolerance"
    NO_V1_SIGNATURE = "no_v1_signature"
    NO_MATCH = "no_match"


class SignatureError(Exception):
    """A request's signature headers do not prove it; ``code`` says which way (for
    programs), ``reason`` says why in a sentence (for the 401 the sender sees)."""

    def __init__(self, code: SignatureFailure, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(reason)


def _utf8(text: str) -> bytes:
    # Node encodes a JS string's lone surrogates as U+FFFD; do the same rather than fail.
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", text).encode("utf-8")


def _hmac_sha256(key: bytes, message: bytes) -> hmac.HMAC:
    return hmac.new(key, message, hashlib.sha256)


def _require_secrets(secrets: Sequence[str], scheme: str) -> None:
    # An empty list is a deployment error, not a bad request: make it loud.
    if not secrets:
        raise ValueError(f"no {scheme} secret configured")


# -- secrets ---------------------------------------------------------------------------


def parse_secret_list(value: str | None) -> list[str]:
    """Split a comma-separated setting into secrets, trimmed, empties dropped, in order."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def generate_legacy_secret() -> str:
    """A new legacy secret: 64 hex characters (32 random bytes), as the reference makes."""
    return _random.token_hex(32)


def generate_webhook_secret() -> str:
    """A new Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(_random.token_bytes(32)).decode("ascii")


def webhook_secret_valid(secret: str) -> bool:
    """Whether ``secret`` is a Standard Webhooks secret this module can sign with."""
    try:
        _webhook_key(secret)
    except ValueError:
        return False
    return True


def _webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret.

    As the Standard Webhooks libraries do, the ``whsec_`` prefix is optional and the rest
    is always base64-decoded; a secret that is not base64 is a configuration error.
    """
    encoded = secret.removeprefix(WEBHOOK_SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret must be 'whsec_' followed by base64") from None
    if not key:
        raise ValueError("a webhook secret must not be empty")
    return key


# -- legacy scheme -----------------------------------------------------------------------


def legacy_sign(secret: str, payload: Any) -> str:
    """Lowercase hex HMAC-SHA256, keyed with ``secret``'s UTF-8, of canonical_json(payload)."""
    message = canonical_json(payload).encode("utf-8")  # never fails: no lone surrogates
    return _hmac_sha256(_utf8(secret), message).hexdigest()


def legacy_verify(secrets: Sequence[str], payload: Any, signature: str) -> bool:
    """True when ``signature`` is the legacy signature of ``payload`` under any secret.

    ``payload`` is the parsed body. Hex case is ignored, as the reference ignores it.
    Comparison is constant-time. Raises ValueError when ``secrets`` is empty.
    """
    _require_secrets(secrets, "legacy signing")
    message = canonical_json(payload).encode("utf-8")
    received = _utf8(signature.strip().lower())
    matched = False
    for secret in secrets:  # no early exit: timing does not reveal which secret matched
        expected = _hmac_sha256(_utf8(secret), message).hexdigest().encode("ascii")
        matched |= hmac.compare_digest(expected, received)
    return matched


# -- Standard Webhooks scheme --------------------------------------------------------------


def _webhook_digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = _utf8(f"{msg_id}.{timestamp}.") + body
    return base64.b64encode(_hmac_sha256(key, signed).digest()).decode("ascii")


def webhook_sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of ``{msg_id}.{timestamp}.{body}``."""
    return "v1," + _webhook_digest(_webhook_key(secret), msg_id, timestamp, body)


def _parse_unix_seconds(header: str) -> int:
    if not _UNIX_SECONDS.fullmatch(header.strip()):
        raise SignatureError(SignatureFailure.MALFORMED_TIMESTAMP,
                             "webhook-timestamp is not a whole number of Unix seconds")
    return int(header)


def _check_tolerance(timestamp: int, now: float, tolerance_s: int) -> None:
    drift = timestamp - now
    if drift < -tolerance_s:
        raise SignatureError(SignatureFailure.TIMESTAMP_OUT_OF_TOLERANCE,
                             f"webhook-timestamp is too old (over {tolerance_s}s in the past)")
    if drift > tolerance_s:
        raise SignatureError(SignatureFailure.TIMESTAMP_OUT_OF_TOLERANCE,
                             f"webhook-timestamp is too new (over {tolerance_s}s in the future)")


def _v1_entries(header: str) -> list[bytes]:
    # Entries are space separated; other versions (e.g. v1a) are skipped, not errors.
    entries = []
    for entry in header.split():
        version, _, value = entry.partition(",")
        if version == "v1" and value:
            entries.append(_utf8(value))
    return entries


def webhook_verify(
    secrets: Sequence[str],
    msg_id: str | None,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    *,
    now: datetime | float,
    tolerance_s: int = WEBHOOK_TOLERANCE_S,
) -> None:
    """Verify a Standard Webhooks v1 signature over the raw ``body``; return None if valid.

    Raises SignatureError (missing header, malformed or out-of-tolerance timestamp, no
    matching v1 entry) and ValueError when ``secrets`` is empty or not base64.
    """
    _require_secrets(secrets, "webhook")
    missing = SignatureFailure.MISSING_HEADER
    if not msg_id:
        raise SignatureError(missing, f"missing {WEBHOOK_ID_HEADER} header")
    if not timestamp_header:
        raise SignatureError(missing, f"missing {WEBHOOK_TIMESTAMP_HEADER} header")
    if not signature_header:
        raise SignatureError(missing, f"missing {WEBHOOK_SIGNATURE_HEADER} header")
    timestamp = _parse_unix_seconds(timestamp_header)
    _check_tolerance(timestamp, _epoch(now), tolerance_s)
    received = _v1_entries(signature_header)
    if not received:
        raise SignatureError(SignatureFailure.NO_V1_SIGNATURE,
                             "webhook-signature holds no v1 signature")
    matched = False
    for secret in secrets:
        expected = _utf8(_webhook_digest(_webhook_key(secret), msg_id, timestamp, body))
        for candidate in received:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError(SignatureFailure.NO_MATCH, "no webhook-signature entry matches")


# -- sending -----------------------------------------------------------------------------


def _epoch(now: datetime | float) -> float:
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return now.timestamp()
    return float(now)


def js_iso_timestamp(now: datetime | float) -> str:
    """``now`` as JavaScript's ``Date.prototype.toISOString``: UTC, milliseconds, ``Z``."""
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        moment = now.astimezone(UTC)
    else:
        moment = datetime.fromtimestamp(math.floor(now * 1000) / 1000, UTC)
    # isoformat truncates to milliseconds as the division did, in C (strftime was a tenth
    # of a backfill's time), and pads the year to four digits as toISOString does.
    return moment.isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


def envelope_bytes(envelope: Mapping[str, Any]) -> bytes:
    """Serialise an envelope for sending: compact JSON in UTF-8, keys in given order.

    Every value round-trips through parse_json (floats use their shortest repr, big
    ints are written exactly, lone surrogates fall back to ``\\u`` escapes), so the
    receiver's canonical form equals ``canonical_json(envelope)``. NaN and infinities
    are refused with ValueError, since JSON cannot carry them.
    """
    try:
        return _compact_json.encode(envelope).encode("utf-8")
    except UnicodeEncodeError:
        return _compact_ascii_json.encode(envelope).encode("ascii")


def signed_headers(
    *,
    body: bytes,
    idempotency_key: str,
    legacy_secrets: Sequence[str],
    webhook_secrets: Sequence[str],
    now: datetime | float,
    payload: Any = _FROM_BODY,
) -> dict[str, str]:
    """The headers that sign ``body`` under each scheme that has a secret.

    The first secret of each list signs; an empty list omits that scheme's headers (both
    empty is a ValueError). ``payload`` defaults to ``parse_json(body)``, which is what a
    receiver will canonicalise; pass it only to skip re-parsing a body you just built.
    """
    if not legacy_secrets and not webhook_secrets:
        raise ValueError("no secret to sign with")
    headers = {"content-type": "application/json"}
    if legacy_secrets:
        parsed = parse_json(body) if payload is _FROM_BODY else payload
        headers[LEGACY_SIGNATURE_HEADER] = legacy_sign(legacy_secrets[0], parsed)
        headers[LEGACY_TIMESTAMP_HEADER] = js_iso_timestamp(now)
    if webhook_secrets:
        timestamp = math.floor(_epoch(now))
        headers[WEBHOOK_ID_HEADER] = idempotency_key
        headers[WEBHOOK_TIMESTAMP_HEADER] = str(timestamp)
        headers[WEBHOOK_SIGNATURE_HEADER] = webhook_sign(
            webhook_secrets[0], idempotency_key, timestamp, body
        )
    return headers
