"""Forwarded headers, trusted only from the proxies named in ``CLAWDBOT_TRUSTED_PROXIES``.

The client address decides the rejection rate limit and is recorded with every
rejection and accepted milestone, and ``X-Forwarded-Proto`` / ``-Host`` decide what
Django takes for the scheme and host. A peer that is not a trusted proxy could set any of
them, so ``ForwardedHeaders`` removes every forwarded header (``Forwarded``,
``X-Forwarded-*``, ``X-Real-IP``) from its requests before anything reads them.

From a trusted proxy, the client is the right-most ``X-Forwarded-For`` address that is not
itself a trusted proxy (each proxy appends the address it received from, so the entries to
the left of the one the last trusted proxy added are the client's own claims). An entry
that is not an IP address ends the walk there: the address is then the last trusted hop,
never text the client made up. ``X-Forwarded-Proto`` sets the scope's scheme when it is
``http`` or ``https``. The web server's own proxy handling is off (``clawdbot.serve``), so
this is the one place that decides.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["ForwardedHeaders", "client_address", "parse_trusted_proxies"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Headers only a trusted proxy may send; removed from everyone else's requests.
FORWARDED_HEADERS = frozenset({
    b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host",
    b"x-forwarded-port", b"x-forwarded-prefix", b"x-real-ip",
})
_SCHEMES = {"http": {"http": "http", "https": "https"},
            "websocket": {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}}
# An X-Forwarded-For longer than this is not walked past its last this-many characters.
_MAX_FORWARDED_FOR = 2048


@lru_cache(maxsize=8)
def parse_trusted_proxies(value: str) -> tuple[Network, ...]:
    """``CLAWDBOT_TRUSTED_PROXIES``: comma-separated addresses or CIDRs (``10.0.0.0/8``).

    Raises ImproperlyConfigured naming an entry that is neither.
    """
    networks = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"CLAWDBOT_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR") from None
    return tuple(networks)


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return None  # a zone names an interface of the sender's host: not ours to keep
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
    return address


def _trusted(address: Address | None, proxies: Iterable[Network]) -> bool:
    return address is not None and any(address in network for network in proxies)


def client_address(peer: str, forwarded_for: str, proxies: tuple[Network, ...]) -> str:
    """The client a request came from: ``peer``, or from a trusted peer the right-most
    address of ``forwarded_for`` that is not a trusted proxy (see the module docstring).
    The answer is always ``peer`` or an IP address in canonical form."""
    current = _address(peer)
    if not _trusted(current, proxies):
        return peer
    for entry in reversed(forwarded_for[-_MAX_FORWARDED_FOR:].split(",")):
        hop = _address(entry)
        if hop is None:
            break
        current = hop
        if not _trusted(hop, proxies):
            break
    return str(current)


class ForwardedHeaders:
    """ASGI middleware for HTTP and WebSocket scopes; see the module docstring."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        parse_trusted_proxies(settings.CLAWDBOT_TRUSTED_PROXIES)  # a bad entry stops startup

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in _SCHEMES:
            scope = _rewritten(scope)
        await self.app(scope, receive, send)


def _rewritten(scope: dict) -> dict:
    headers = scope.get("headers") or []
    if not any(name in FORWARDED_HEADERS for name, _ in headers):
        return scope
    scope = dict(scope)
    client = scope.get("client")
    proxies = parse_trusted_proxies(settings.CLAWDBOT_TRUSTED_PROXIES)
    if not client or not _trusted(_address(str(client[0])), proxies):
        scope["headers"] = [(n, v) for n, v in headers if n not in FORWARDED_HEADERS]
        return scope
    forwarded_for = b",".join(v for n, v in headers if n == b"x-forwarded-for")
    host = client_address(str(client[0]), forwarded_for.decode("latin-1"), proxies)
    if host != client[0]:
        scope["client"] = (host, 0)
    protos = [v for n, v in headers if n == b"x-forwarded-proto"]
    if protos:
        proto = protos[-1].decode("latin-1").split(",")[-1].strip().lower()
        default = "http" if scope["type"] == "http" else "ws"
        scope["scheme"] = _SCHEMES[scope["type"]].get(proto, scope.get("scheme", default))
    return scope
