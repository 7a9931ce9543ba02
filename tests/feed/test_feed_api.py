"""GET /api/milestones/latest and /api/milestones/<key> (SPEC §5)."""

from __future__ import annotations

import pytest

from feed_app.api.params import js_limit
from tests.factories import EnvelopeFactory, MilestoneEventFactory

pytestmark = pytest.mark.django_db


def _ingest_many(ingest, count: int, **event_fields) -> list[dict]:
    envelopes = [EnvelopeFactory(event=MilestoneEventFactory(**event_fields)) for _ in range(count)]
    for envelope in envelopes:
        assert ingest.send(envelope).json()["status"] == "accepted"
    return envelopes


@pytest.mark.parametrize(
    ("raw", "limit"),
    [
        (None, 20), ("", 20), ("abc", 20), ("0", 20), ("-0", 20), ("7", 7), ("7abc", 7),
        (" 12", 12), ("-5", 1), ("1", 1), ("50", 50), ("51", 50), ("99999999999999999999", 50),
        ("0x10", 16), ("1e3", 1), ("3.9", 3), ("+4", 4),
    ],
)
def test_limit_is_parsed_as_the_reference_parses_it(raw, limit):
    assert js_limit(raw) == limit


@pytest.mark.parametrize(
    ("raw", "limit"),
    [("9" * 5000, 50), ("-" + "9" * 5000, 1), ("0" * 5000 + "7", 7), ("1" * 5000 + "x", 50)],
)
def test_limit_with_thousands_of_digits_is_clamped_not_an_error(raw, limit):
    # Python refuses int() of over 4300 digits; JavaScript's parseInt just gets big.
    assert js_limit(raw) == limit


@pytest.mark.parametrize(
    ("raw", "limit"),
    [("\ufeff7", 7), ("\u00a07", 7), ("\u20287", 7), ("\x1c5", 20), ("\x1f5", 20),
     ("\x855", 20), ("\u200b5", 20)],
)
def test_limit_skips_only_the_whitespace_parseint_skips(raw, limit):
    # Values computed with Node.js: min(50, max(1, parseInt(raw) || 20)).
    assert js_limit(raw) == limit


def test_latest_with_a_huge_limit_is_not_a_server_error(client, db):
    response = client.get("/api/milestones/latest?limit=" + "9" * 5000)
    assert response.status_code == 200 and response.json()["ok"] is True


def test_latest_defaults_to_20_items_newest_timestamp_first(client, ingest):
    _ingest_many(ingest, 25)
    body = client.get("/api/milestones/latest").json()
    assert body["ok"] is True
    stamps = [item["timestampUtc"] for item in body["items"]]
    assert len(stamps) == 20
    assert stamps == sorted(stamps, reverse=True)


def test_latest_orders_by_timestamp_not_by_arrival(client, ingest):
    ingest.send(EnvelopeFactory(event=MilestoneEventFactory(timestampUtc="2026-03-01T00:00:00Z")))
    ingest.send(EnvelopeFactory(event=MilestoneEventFactory(timestampUtc="2026-01-01T00:00:00Z")))
    ingest.send(EnvelopeFactory(event=MilestoneEventFactory(timestampUtc="2026-02-01T00:00:00+05:00")))
    items = client.get("/api/milestones/latest").json()["items"]
    assert [i["timestampUtc"][:7] for i in items] == ["2026-03", "2026-02", "2026-01"]


def test_latest_items_are_the_event_plus_where_it_was_stored(client, ingest):
    (envelope,) = _ingest_many(ingest, 1)
    (item,) = client.get("/api/milestones/latest").json()["items"]
    assert {k: item[k] for k in envelope["event"]} == envelope["event"]
    assert item["idempotencyKey"] == envelope["idempotencyKey"]
    assert isinstance(item["position"], int) and item["receivedAtUtc"].endswith("Z")


def test_limit_over_50_is_clamped(client, ingest):
    _ingest_many(ingest, 55)
    assert len(client.get("/api/milestones/latest?limit=500").json()["items"]) == 50


def test_empty_feed_is_an_empty_list(client, db):
    assert client.get("/api/milestones/latest").json() == {
        "ok": True, "items": [], "nextCursor": None
    }


def test_cursor_pages_through_every_item_once(client, ingest):
    envelopes = _ingest_many(ingest, 23)
    seen, url = [], "/api/milestones/latest?limit=10"
    while url:
        body = client.get(url).json()
        seen += [item["idempotencyKey"] for item in body["items"]]
        cursor = body["nextCursor"]
        url = f"/api/milestones/latest?limit=10&before={cursor}" if cursor else None
    assert sorted(seen) == sorted(e["idempotencyKey"] for e in envelopes)
    assert len(seen) == len(set(seen))


def test_cursor_keeps_order_among_equal_timestamps(client, ingest):
    _ingest_many(ingest, 5, timestampUtc="2026-02-28T00:00:00.000Z")
    first = client.get("/api/milestones/latest?limit=2").json()
    rest = client.get(f"/api/milestones/latest?limit=50&before={first['nextCursor']}").json()
    positions = [i["position"] for i in first["items"] + rest["items"]]
    assert positions == sorted(positions, reverse=True) and len(positions) == 5


def test_malformed_cursor_is_400(client, db):
    response = client.get("/api/milestones/latest?before=nonsense")
    assert response.status_code == 400
    assert response.json()["errors"] == {"before": ["Invalid."]}


@pytest.mark.parametrize(
    ("param", "field", "value"),
    [("scope", "scope", "billing"), ("riskStatus", "riskStatus", "blocked"),
     ("source", "source", "operator")],
)
def test_filters_return_only_matching_items(client, ingest, param, field, value):
    _ingest_many(ingest, 3)
    _ingest_many(ingest, 2, **{field: value})
    items = client.get(f"/api/milestones/latest?{param}={value}").json()["items"]
    assert len(items) == 2 and {i[field] for i in items} == {value}


def test_one_milestone_by_idempotency_key(client, ingest):
    envelope = EnvelopeFactory(idempotencyKey="orch/run:42")
    ingest.send(envelope)
    body = client.get("/api/milestones/orch/run:42").json()
    assert body["ok"] is True and body["item"]["milestoneId"] == envelope["event"]["milestoneId"]


def test_unknown_idempotency_key_is_404(client, db):
    response = client.get("/api/milestones/never-sent")
    assert response.status_code == 404 and response.json()["ok"] is False


@pytest.mark.parametrize("param", ["scope", "riskStatus", "source"])
def test_a_filter_holding_nul_is_a_400_not_a_500(client, db, param):
    # PostgreSQL text cannot hold NUL, so the query itself would fail.
    response = client.get(f"/api/milestones/latest?{param}=a%00b")
    assert response.status_code == 400
    assert param in response.json()["errors"]


def test_a_key_holding_nul_is_404_not_500(client, db):
    response = client.get("/api/milestones/a%00b")
    assert response.status_code == 404 and response.json()["ok"] is False


def test_latest_answers_json_whatever_the_accept_header(client, db):
    response = client.get("/api/milestones/latest", HTTP_ACCEPT="text/plain")
    assert response.status_code == 200 and response.json()["ok"] is True
