"""Forwarded headers count only from CLAWDBOT_TRUSTED_PROXIES (clawdbot.forwarded).

Reproduced before: the web server believed ``X-Forwarded-For`` from any loopback peer, so
a local client chose the address its rejections were rate-limited and recorded under,
and an 80-character value reached the 64-character address column (a 500).
"""

from __future__ import annotations

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured

from clawdbot.forwarded import ForwardedHeaders, client_address, parse_trusted_proxies
from feed_app.models import DeadLetter
from tests.liveserver import asgi_server

PROXIES = parse_trusted_proxies("10.0.0.0/8, 192.0.2.1")
JUNK = "x" * 80


@pytest.mark.parametrize(("peer", "forwarded_for", "client"), [
    ("198.51.100.7", "203.0.113.5", "198.51.100.7"),  # not a proxy: its claim is ignored
    ("10.1.2.3", "203.0.113.5", "203.0.113.5"),
    ("10.1.2.3", "203.0.113.5, 10.9.9.9", "203.0.113.5"),  # through two trusted proxies
    ("10.1.2.3", "6.6.6.6, 203.0.113.5", "203.0.113.5"),  # the left entry is the client's claim
    ("10.1.2.3", f"{JUNK}, 203.0.113.5", "203.0.113.5"),
    ("10.1.2.3", JUNK, "10.1.2.3"),  # junk: the last trusted hop, never the text
    ("10.1.2.3", "203.0.113.5, " + JUNK, "10.1.2.3"),
    ("10.1.2.3", "", "10.1.2.3"),
    ("10.1.2.3", "10.4.4.4", "10.4.4.4"),  # every hop trusted: the left-most
    ("10.1.2.3", "::ffff:203.0.113.5", "203.0.113.5"),
    ("10.1.2.3", "fe80::1%eth0", "10.1.2.3"),
    ("192.0.2.1", "2001:db8::1", "2001:db8::1"),
])
def test_the_client_is_the_right_most_address_no_trusted_proxy_added(peer, forwarded_for,
                                                                      client):
    assert client_address(peer, forwarded_for, PROXIES) == client


def test_a_setting_entry_that_is_no_address_or_cidr_is_a_configuration_error():
    with pytest.raises(ImproperlyConfigured, match="not-a-net"):
        parse_trusted_proxies("10.0.0.0/8,not-a-net")


def _scope_seen(settings, peer: str, headers: list[tuple[bytes, bytes]],
                trusted: str = "") -> dict:
    settings.CLAWDBOT_TRUSTED_PROXIES = trusted
    seen: dict = {}

    async def app(scope, receive, send):
        seen.update(scope)

    scope = {"type": "http", "scheme": "http", "client": (peer, 4000), "headers": headers}
    async_to_sync(ForwardedHeaders(app))(scope, None, None)
    return seen


FORWARDED = [(b"host", b"example.org"), (b"x-forwarded-for", b"203.0.113.5"),
             (b"x-forwarded-proto", b"https"), (b"x-forwarded-host", b"evil.example"),
             (b"forwarded", b"for=6.6.6.6"), (b"x-real-ip", b"6.6.6.6")]


def test_an_untrusted_peer_loses_every_forwarded_header(settings):
    seen = _scope_seen(settings, "127.0.0.1", FORWARDED)
    assert seen["headers"] == [(b"host", b"example.org")]
    assert seen["client"] == ("127.0.0.1", 4000) and seen["scheme"] == "http"


def test_a_trusted_proxy_sets_the_client_and_the_scheme(settings):
    seen = _scope_seen(settings, "127.0.0.1", FORWARDED, trusted="127.0.0.0/8")
    assert seen["client"][0] == "203.0.113.5" and seen["scheme"] == "https"
    assert (b"x-forwarded-host", b"evil.example") in seen["headers"]  # Django's to judge


def test_an_odd_forwarded_proto_leaves_the_scheme(settings):
    seen = _scope_seen(settings, "127.0.0.1", [(b"x-forwarded-proto", b"gopher")],
                       trusted="127.0.0.1")
    assert seen["scheme"] == "http"


def _unsigned_post(server: str, forwarded_for: str) -> httpx.Response:
    return httpx.post(f"{server}/internal/milestones/ingest", content=b"{}", timeout=10,
                      headers={"content-type": "application/json",
                               "x-forwarded-for": forwarded_for})


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_server_ignores_forwarded_for_from_a_peer_that_is_not_a_trusted_proxy():
    with asgi_server() as server:
        spoofed = _unsigned_post(server, "203.0.113.5")
        junk = _unsigned_post(server, JUNK)
    assert (spoofed.status_code, junk.status_code) == (401, 401)
    assert set(DeadLetter.objects.values_list("remote_addr", flat=True)) == {"127.0.0.1"}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_server_believes_a_trusted_proxy_and_never_stores_junk_as_an_address():
    with asgi_server({"CLAWDBOT_TRUSTED_PROXIES": "127.0.0.1/32"}) as server:
        forwarded = _unsigned_post(server, "203.0.113.5")
        junk = _unsigned_post(server, JUNK)
    assert (forwarded.status_code, junk.status_code) == (401, 401)
    assert sorted(DeadLetter.objects.values_list("remote_addr", flat=True)) == [
        "127.0.0.1", "203.0.113.5"]
