"""A standalone ingest receiver for end-to-end tests and benchmarks.

Verifies both signature schemes with ``clawdbot.contract`` (no Django), deduplicates by
idempotencyKey, and answers as scripted:

    python tests/orchestrator/receiver.py --legacy-secret S --webhook-secret whsec_…

prints ``PORT <n>`` once listening. ``POST /_control`` with ``{"script": [reply, …],
"default": reply}`` sets the next replies, where a reply is ``{"status": 503,
"retryAfter": "1", "body": {...}}`` or ``{"hang": true}`` (holds the request until the
next ``/_control``), ``{"status": 200, "delayS": 0.2}`` (answers after that long),
``{"status": 200, "drop": true}`` (accept, then close the connection without a
``Connection: close``); ``{"status": 200}`` means "verify, then
accept or answer duplicate". ``GET /_log`` returns every ingest request seen.

A POST to a path ending in ``/batch`` is a batch (SPEC §10): verified over the whole body,
then each envelope is accepted or duplicate, or rejected when its key is in the reply's
``"reject"`` list; its log entry names the ``batchId`` and every ``keys``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from clawdbot.contract import (
    SignatureError,
    legacy_verify,
    parse_json,
    parse_secret_list,
    webhook_verify,
)


class State:
    def __init__(self, legacy: list[str], webhook: list[str]) -> None:
        self.legacy, self.webhook = legacy, webhook
        self.lock = threading.Lock()
        self.script: list[dict] = []
        self.default: dict = {"status": 200}
        self.seen: set[str] = set()
        self.log: list[dict] = []
        self.release = threading.Event()

    def next_reply(self) -> dict:
        with self.lock:
            return self.script.pop(0) if self.script else self.default


def verify(state: State, headers: dict[str, str], body: bytes) -> tuple[list[str], str]:
    """Return the schemes that verified and an error (empty if at least one did and none
    failed)."""
    ok: list[str] = []
    payload = parse_json(body)
    if "x-openclaw-signature" in headers:
        if not legacy_verify(state.legacy, payload, headers["x-openclaw-signature"]):
            return ok, "legacy signature mismatch"
        ok.append("legacy")
    if "webhook-signature" in headers:
        try:
            webhook_verify(state.webhook, headers.get("webhook-id"),
                           headers.get("webhook-timestamp"), headers["webhook-signature"],
                           body, now=time.time())
        except SignatureError as exc:
            return ok, f"webhook: {exc}"
        ok.append("webhook")
    return ok, "" if ok else "no signature"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    state: State

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        with self.state.lock:
            self._reply(200, {"requests": list(self.state.log)})

    def do_POST(self) -> None:
        body = self._body()
        if self.path == "/_control":
            self._control(json.loads(body))
        else:
            self._ingest(body)

    def _control(self, spec: dict) -> None:
        with self.state.lock:
            self.state.script = list(spec.get("script", []))
            self.state.default = spec.get("default", {"status": 200})
            old, self.state.release = self.state.release, threading.Event()
        old.set()
        self._reply(200, {"ok": True})

    def _ingest(self, body: bytes) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        schemes, error = verify(self.state, headers, body)
        payload = parse_json(body)
        is_batch = self.path.rstrip("/").endswith("/batch")
        key = str(payload.get("batchId" if is_batch else "idempotencyKey"))
        reply = self.state.next_reply()
        entry = {"key": key, "schemes": schemes, "error": error, "reply": reply,
                 "path": self.path, "webhookId": headers.get("webhook-id")}
        if is_batch:
            entry["keys"] = [str(e.get("idempotencyKey")) for e in payload["envelopes"]]
        with self.state.lock:
            self.state.log.append(entry)
        if reply.get("hang"):
            self.state.release.wait(120)
            return self._reply(503, {"ok": False, "status": "released"})
        if reply.get("delayS"):
            time.sleep(float(reply["delayS"]))  # the scripted slowness of a real target
        status = reply.get("status", 200)
        extra = {"Retry-After": reply["retryAfter"]} if "retryAfter" in reply else {}
        if status != 200 or "body" in reply:
            return self._reply(status, reply.get("body", {"ok": False}), extra)
        if error:
            return self._reply(401, {"ok": False, "status": "rejected", "reason": error})
        if is_batch:
            return self._reply(200, self._batch(key, entry["keys"], reply.get("reject", [])))
        with self.state.lock:
            duplicate = key in self.state.seen
            self.state.seen.add(key)
        self._reply(200, {"ok": True, "status": "duplicate" if duplicate else "accepted"})
        # "drop": close the kept-alive connection without saying so, as idle timeouts do.
        self.close_connection = bool(reply.get("drop"))


    def _batch(self, batch_id: str, keys: list[str], reject: list[str]) -> dict:
        results = []
        with self.state.lock:
            for key in keys:
                if key in reject:
                    results.append({"idempotencyKey": key, "status": "rejected",
                                    "reason": "invalid_event", "errors": {"event": ["scripted"]}})
                    continue
                status = "duplicate" if key in self.state.seen else "accepted"
                self.state.seen.add(key)
                results.append({"idempotencyKey": key, "status": status})
        return {"ok": True, "batchId": batch_id, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--legacy-secret", default="")
    parser.add_argument("--webhook-secret", default="")
    args = parser.parse_args()
    Handler.state = State(parse_secret_list(args.legacy_secret),
                          parse_secret_list(args.webhook_secret))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
