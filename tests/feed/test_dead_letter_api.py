"""GET /api/milestones/dead-letter: operators only, newest first, with the total count."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db

URL = "/api/milestones/dead-letter"


def _reject(ingest, count: int) -> None:
    for i in range(count):
        ingest.post(f'{{"n": {i}}}'.encode(), {})


def test_anonymous_request_is_401(client, ingest):
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json()["ok"] is False


def test_token_of_a_non_staff_user_is_403(client, db):
    user = get_user_model().objects.create_user("reader", password="pw")
    token = Token.objects.create(user=user).key
    assert client.get(URL, headers={"Authorization": f"Token {token}"}).status_code == 403


def test_operator_token_lists_rejections_newest_first_with_count(client, ingest, operator_token):
    _reject(ingest, 3)
    body = client.get(URL, headers={"Authorization": f"Token {operator_token}"}).json()
    assert body["ok"] is True and body["count"] == 3
    ids = [item["id"] for item in body["items"]]
    assert ids == sorted(ids, reverse=True)
    assert body["countExact"] is True
    item = body["items"][0]
    assert item["reason"] and item["timestampUtc"].endswith("Z")
    assert item["httpStatus"] == 401 and item["reasonCode"] == "missing_signature"


def test_staff_session_may_read_the_dead_letter(client, ingest, operator):
    _reject(ingest, 1)
    client.force_login(operator)
    assert client.get(URL).json()["count"] == 1


def test_count_is_the_total_not_the_page(client, ingest, operator_token):
    _reject(ingest, 5)
    auth = {"Authorization": f"Token {operator_token}"}
    body = client.get(f"{URL}?limit=2", headers=auth).json()
    assert len(body["items"]) == 2 and body["count"] == 5
    older = client.get(f"{URL}?limit=50&before={body['items'][-1]['id']}",
                       headers=auth).json()
    assert len(older["items"]) == 3


def test_key_appears_only_when_known(client, ingest, operator_token):
    ingest.post(b'{"idempotencyKey": "k-1"}', {"x-openclaw-signature": "x",
                                               "x-openclaw-timestamp": "t"})
    ingest.post(b"[]", {})
    items = client.get(URL, headers={"Authorization": f"Token {operator_token}"}).json()["items"]
    assert [item.get("idempotencyKey") for item in items] == [None, "k-1"]


@pytest.mark.parametrize("query", ["limit=abc", "limit=1e3", "before=abc", "before=1.5"])
def test_a_non_integer_limit_or_before_is_a_clear_400(client, ingest, operator_token, query):
    _reject(ingest, 1)
    response = client.get(f"{URL}?{query}", headers={"Authorization": f"Token {operator_token}"})
    assert response.status_code == 400
    name = query.split("=")[0]
    assert response.json()["errors"] == {name: ["Must be an integer."]}


@pytest.mark.parametrize(("query", "expected"), [
    ("", 3), ("limit=", 3), ("before=", 3), ("limit=0", 1), ("limit=-5", 1), ("limit=2", 2),
    ("limit=99999999999999999999", 3),
])
def test_a_missing_or_out_of_range_limit_falls_back_or_is_clamped(
    client, ingest, operator_token, query, expected
):
    _reject(ingest, 3)
    response = client.get(f"{URL}?{query}", headers={"Authorization": f"Token {operator_token}"})
    assert response.status_code == 200
    assert len(response.json()["items"]) == expected


@pytest.mark.parametrize("before", ["99999999999999999999", "-99999999999999999999"])
def test_a_before_beyond_any_position_pages_without_error(client, ingest, operator_token, before):
    _reject(ingest, 2)
    response = client.get(f"{URL}?before={before}",
                          headers={"Authorization": f"Token {operator_token}"})
    assert response.status_code == 200
    assert len(response.json()["items"]) == (2 if before[0] != "-" else 0)
