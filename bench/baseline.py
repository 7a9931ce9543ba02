"""Baseline views: the least a Django view can do for each job, on the same server.

* ``bare_insert``: HMAC of the raw body, ``json.loads``, one INSERT. No canonical form,
  no validation, no event store, no projection.
* ``feed_pgjson``: the latest 50 feed rows serialised by PostgreSQL with json_agg.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

BARE_TABLE = "bench_bare_insert"
CREATE_BARE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {BARE_TABLE} (
    id bigserial PRIMARY KEY, key text UNIQUE NOT NULL, body jsonb NOT NULL
)"""


@csrf_exempt
def bare_insert(request: HttpRequest) -> HttpResponse:
    body = request.body
    secret = settings.MILESTONE_SIGNING_SECRET.split(",")[0].encode()
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("x-bench-signature", "")):
        return JsonResponse({"ok": False}, status=401)
    data = json.loads(body)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {BARE_TABLE} (key, body) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            [data["idempotencyKey"], json.dumps(data)],
        )
    return JsonResponse({"ok": True, "status": "accepted"})


def feed_pgjson(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(json_agg(t.event), '[]')::text FROM (SELECT event FROM feed_item"
            " ORDER BY timestamp DESC, position DESC LIMIT 50) t"
        )
        items = cursor.fetchone()[0]
    return HttpResponse(f'{{"ok":true,"items":{items}}}', content_type="application/json")
