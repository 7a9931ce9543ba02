"""Load and send the hostile request corpus (tests/data/hostile_requests.json).

The format is described in tests/data/README.md. Requests go over a plain socket, framed
by h11, with the body written from a thread while the answer is read: a server that
answers before the body is all sent (a 413) is seen answering, not as a broken pipe.
"""

from __future__ import annotations

import base64
import json
import math
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h11
from django.conf import settings

from clawdbot import contract

CORPUS = Path(__file__).resolve().parent / "data" / "hostile_requests.json"
CHUNK = 65536


def cases() -> list[dict[str, Any]]:
    return json.loads(CORPUS.read_text(encoding="utf-8"))["cases"]


def expand(value: Any) -> Any:
    """Replace every ``{"repeat": s, "times": n}`` with ``s * n``, and join part lists
    where a string is expected (``bodyParts``, replacement values)."""
    if isinstance(value, dict):
        if set(value) == {"repeat", "times"}:
            return value["repeat"] * value["times"]
        return {expand(k): expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v) for v in value]
    return value


def _text(parts: str | list[Any]) -> str:
    return parts if isinstance(parts, str) else "".join(expand(p) for p in parts)


def body_of(case: dict[str, Any]) -> bytes:
    if "envelope" in case:
        text = contract.envelope_bytes(expand(case["envelope"])).decode("utf-8")
        for old, new in case.get("replace", []):
            assert old in text, (case["name"], old)
            text = text.replace(old, _text(new))
        return (case.get("prefix", "") + text + case.get("suffix", "")).encode("utf-8")
    if "bodyBase64" in case:
        return base64.b64decode(case["bodyBase64"])
    if "bodyParts" in case:
        return _text(case["bodyParts"]).encode("utf-8")
    return case.get("body", "").encode("utf-8")


def _key_of(body: bytes) -> str:
    try:
        payload = contract.parse_json(body)
    except contract.JsonInvalid:
        return "unparseable"
    key = payload.get("idempotencyKey") if isinstance(payload, dict) else None
    key = payload.get("batchId", key) if isinstance(payload, dict) else key
    return key if isinstance(key, str) else "no-key"


def signature_headers(case: dict[str, Any], body: bytes, *, now: float) -> dict[str, str]:
    """The signature headers ``case["sign"]`` asks for, computed now with the server's
    secrets (a body that is not JSON gets a well-formed legacy signature of nothing)."""
    spec = case.get("sign")
    if not spec:
        return {}
    schemes = spec["schemes"]
    legacy = contract.parse_secret_list(settings.MILESTONE_SIGNING_SECRET)
    webhook = contract.parse_secret_list(settings.MILESTONE_WEBHOOK_SECRET)
    headers: dict[str, str] = {}
    if "legacy" in schemes:
        try:
            payload = contract.parse_json(body)
        except contract.JsonInvalid:
            headers[contract.LEGACY_SIGNATURE_HEADER] = "0" * 64
            headers[contract.LEGACY_TIMESTAMP_HEADER] = contract.js_iso_timestamp(now)
        else:
            headers.update(contract.signed_headers(
                body=body, idempotency_key="", legacy_secrets=legacy, webhook_secrets=[],
                now=now, payload=payload))
    if "webhook" in schemes:
        key = spec.get("webhookId") or _key_of(body)
        headers.update(contract.signed_headers(
            body=body, idempotency_key=key, legacy_secrets=[], webhook_secrets=webhook,
            now=now + spec.get("webhookOffset", 0)))
    if spec.get("uppercase"):
        signature = headers[contract.LEGACY_SIGNATURE_HEADER]
        headers[contract.LEGACY_SIGNATURE_HEADER] = signature.upper()
    if "legacy" in spec.get("wrong", []):
        headers[contract.LEGACY_SIGNATURE_HEADER] = "0" * 64
    if "webhook" in spec.get("wrong", []):
        headers[contract.WEBHOOK_SIGNATURE_HEADER] = "v1," + base64.b64encode(bytes(32)).decode()
    if spec.get("freshTimestampHeader"):
        headers[contract.WEBHOOK_TIMESTAMP_HEADER] = str(math.floor(now))
    for name in spec.get("drop", []):
        headers.pop(name, None)
    headers.update(expand(spec.get("set", {})))
    headers.pop("content-type", None)  # the case says its own
    return headers


@dataclass(frozen=True)
class Prepared:
    method: str
    target: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    chunked: bool


def prepare(case: dict[str, Any], *, host: str, now: float | None = None,
            token: str = "") -> Prepared:
    """The request ``case`` describes, signed now; header values as Latin-1 bytes."""
    now = time.time() if now is None else now
    body = body_of(case)
    signed_body = body
    tamper = case.get("sign", {}) and case["sign"].get("tamper")
    headers = {**{k.lower(): v for k, v in expand(case.get("headers", {})).items()},
               **signature_headers(case, signed_body, now=now)}
    for old, new in tamper or []:
        body = body.replace(old.encode(), new.encode())
    headers = {k: v.replace("{operatorToken}", token) for k, v in headers.items()}
    headers.setdefault("host", host)
    chunked = bool(case.get("chunked"))
    if chunked:
        headers["transfer-encoding"] = "chunked"
    else:
        headers["content-length"] = str(len(body))
    encoded = [(k.encode("ascii"), _latin1(v)) for k, v in headers.items()]
    # Host first: h11 and servers want it, and some read only the first one.
    encoded.sort(key=lambda kv: kv[0] != b"host")
    return Prepared(case["method"], case["path"], encoded, body, chunked)


def _latin1(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def send(address: tuple[str, int], request: Prepared, *, timeout: float = 60) -> Answer:
    """Send ``request`` on a new connection and read the answer, even one that comes
    before the body is all written."""
    conn = h11.Connection(h11.CLIENT)
    wire = [conn.send(h11.Request(method=request.method, target=request.target,
                                  headers=request.headers))]
    wire += [conn.send(h11.Data(data=piece)) for piece in _pieces(request.body)]
    wire.append(conn.send(h11.EndOfMessage()))
    sock = socket.create_connection(address, timeout=timeout)
    try:
        writer = threading.Thread(target=_write, args=(sock, wire), daemon=True)
        writer.start()
        status, headers, body = 0, {}, bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(CHUNK))
                continue
            if isinstance(event, h11.Response):
                status, headers = event.status_code, dict(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        writer.join(timeout=timeout)
        return Answer(status, headers, bytes(body))
    finally:
        sock.close()


def _write(sock: socket.socket, wire: list[bytes | None]) -> None:
    try:
        for data in wire:
            if data:
                sock.sendall(data)
    except OSError:
        pass  # the server answered and closed before the body was all sent


def _pieces(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), CHUNK):
        yield body[start:start + CHUNK]
