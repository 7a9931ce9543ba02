"""Batched delivery (SPEC §10): many due envelopes to one target in one signed POST.

A target that declares ``supports_batch`` and has several deliveries due at once gets
them as ``POST <url>/batch`` with ``{"batchId", "sentAtUtc", "envelopes": […]}``, signed as
one envelope is (the legacy header over the canonical form of the whole body; Standard
Webhooks with ``webhook-id`` = ``batchId``). Each envelope is the stored bytes every single
attempt sends. The answer decides per item:

* 2xx with one result per envelope, in order: each item's ``status`` is its delivery's
  outcome (accepted -> delivered, duplicate -> duplicate, rejected -> rejected, with the
  item's reason);
* 2xx that does not name every item as sent: each delivery retries on its schedule (the
  answer was not understood, so nothing is known to be stored);
* 404, 405 or 413: the target does not take batches (or not this big): each envelope is
  sent on its own at once, and the target is sent single envelopes for
  ``REFUSAL_COOLDOWN_S`` in this process;
* anything else (5xx, 429, a timeout, another 4xx): what a single attempt's answer would
  mean, for each delivery (retry on its own schedule, or rejected).

No database here: ``delivery.py`` claims, loads, records.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from clawdbot.contract import js_iso_timestamp, signed_headers
from orchestrator_app.models import Target
from orchestrator_app.retry import Verdict
from orchestrator_app.transport import Transport, TransportResponse

#: At most this many envelopes in one batch (the receiver's limit, SPEC §10) …
MAX_ITEMS = 1000
#: … and at most this many bytes of body (the receiver refuses more than 8 MiB).
MAX_BYTES = 8 * 1024 * 1024 - 16 * 1024
#: An answer naming 1,000 items is longer than one envelope's answer.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
#: Answers that mean "no batches here": the envelopes are then sent one at a time.
REFUSING_STATUSES = frozenset({404, 405, 413})
#: After a refusal, this process sends the target single envelopes for this long.
REFUSAL_COOLDOWN_S = 600.0

_ITEM_STATUSES = {"accepted": Verdict.DELIVERED, "duplicate": Verdict.DUPLICATE,
                  "rejected": Verdict.REJECTED}

_refused: dict[str, float] = {}  # target name -> monotonic time its cooldown ends
_refused_lock = threading.Lock()


def batch_url(url: str) -> str:
    """``<url>/batch``: the path gets ``/batch``, any query string stays."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/batch"))


def batch_refusals() -> list[str]:
    """Targets that refused a batch in this process within ``REFUSAL_COOLDOWN_S``."""
    now = time.monotonic()
    with _refused_lock:
        for name in [n for n, until in _refused.items() if until <= now]:
            del _refused[name]
        return sorted(_refused)


def batch_refusal_note(name: str) -> None:
    with _refused_lock:
        _refused[name] = time.monotonic() + REFUSAL_COOLDOWN_S


def batch_refusals_forget() -> None:
    """Forget every refusal (the next batch is tried again)."""
    with _refused_lock:
        _refused.clear()


def batches_of(envelopes: Sequence[str]) -> list[range]:
    """Index ranges into ``envelopes`` that fit one batch each (items and bytes)."""
    chunks: list[range] = []
    start, size = 0, 0
    for i, envelope in enumerate(envelopes):
        length = len(envelope.encode("utf-8")) + 1
        if i > start and (i - start >= MAX_ITEMS or size + length > MAX_BYTES):
            chunks.append(range(start, i))
            start, size = i, 0
        size += length
    if start < len(envelopes):
        chunks.append(range(start, len(envelopes)))
    return chunks


@dataclass(frozen=True)
class ItemAnswer:
    """What one delivery's attempt records: the response it shows (for an item, its
    own result as the body, under the batch's status and headers), the verdict when the
    response alone would not tell it, and an error note."""

    response: TransportResponse
    verdict: Verdict | None = None
    error: str = ""


@dataclass(frozen=True)
class BatchAnswer:
    batch_id: str
    items: list[ItemAnswer] | None  # None: the target refused the batch (``refusal``)
    refusal: str = ""


def batch_body(batch_id: str, sent_at_utc: str, envelopes: Sequence[str]) -> bytes:
    """The batch's bytes, with each envelope exactly as stored (no re-serialisation)."""
    head = json.dumps({"batchId": batch_id, "sentAtUtc": sent_at_utc},
                      separators=(",", ":"))[:-1]
    return (head + ',"envelopes":[' + ",".join(envelopes) + "]}").encode("utf-8")


def batch_send(*, target: Target, keys: Sequence[str], envelopes: Sequence[str],
               transport: Transport) -> BatchAnswer:
    """POST one batch of ``envelopes`` (whose idempotencyKeys are ``keys``) to ``target``
    and read what it means for each. No database; raises nothing for the target's sake."""
    batch_id = f"batch-{uuid.uuid4().hex}"
    now = time.time()
    body = batch_body(batch_id, js_iso_timestamp(now), envelopes)
    url = target.resolved_url()
    try:
        headers = signed_headers(body=body, idempotency_key=batch_id,
                                 legacy_secrets=target.legacy_secret_list(),
                                 webhook_secrets=target.webhook_secret_list(), now=now)
    except ValueError as exc:
        return _each(batch_id, len(keys), ItemAnswer(TransportResponse(
            None, error=f"cannot sign: {exc}")))
    if not url:
        return _each(batch_id, len(keys), ItemAnswer(TransportResponse(
            None, error="target has no URL")))
    response = transport.post(batch_url(url), body=body, headers=headers,
                              timeout=target.timeout_s, max_body=MAX_ANSWER_BYTES)
    code = response.status_code
    if code in REFUSING_STATUSES:
        host = urlsplit(url).hostname or "?"  # events are kept: no credentials
        return BatchAnswer(batch_id, None, f"POST {host} …/batch answered HTTP {code}")
    if code is None or not 200 <= code < 300:
        return _each(batch_id, len(keys), ItemAnswer(response))
    try:
        return BatchAnswer(batch_id, _items(response, keys))
    except ValueError as exc:
        return _each(batch_id, len(keys), ItemAnswer(
            response, Verdict.RETRY, f"HTTP {code}, batch answer not understood: {exc}"))


def _each(batch_id: str, n: int, answer: ItemAnswer) -> BatchAnswer:
    return BatchAnswer(batch_id, [answer] * n)


def _items(response: TransportResponse, keys: Sequence[str]) -> list[ItemAnswer]:
    try:
        parsed: Any = json.loads(response.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValueError("not JSON (or longer than "
                         f"{MAX_ANSWER_BYTES // (1024 * 1024)} MiB)") from None
    results = parsed.get("results") if isinstance(parsed, dict) else None
    if not isinstance(results, list) or len(results) != len(keys):
        raise ValueError(f"expected {len(keys)} results in order")
    answers = []
    for n, (result, key) in enumerate(zip(results, keys, strict=True)):
        if not isinstance(result, dict) or result.get("idempotencyKey") != key:
            raise ValueError(f"result {n} does not name idempotencyKey {key!r}")
        verdict = _ITEM_STATUSES.get(result.get("status"))  # type: ignore[arg-type]
        if verdict is None:
            raise ValueError(f"result {n} has status {result.get('status')!r}")
        error = ""
        if verdict is Verdict.REJECTED:
            detail = result.get("errors")
            error = f"rejected in the batch: {result.get('reason') or '?'}" + (
                f" {json.dumps(detail, ensure_ascii=False)}" if detail else "")
        own = TransportResponse(response.status_code,
                                json.dumps(result, ensure_ascii=False).encode("utf-8"),
                                response.headers, duration_ms=response.duration_ms)
        answers.append(ItemAnswer(own, verdict, error))
    return answers
