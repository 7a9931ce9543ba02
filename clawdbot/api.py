"""Project-wide HTTP plumbing: the DRF exception handler and the health endpoint."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.db import DatabaseError, connection
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from clawdbot import metrics
from clawdbot.contract import js_iso_timestamp
from clawdbot.errors import DomainError, ServiceUnavailable
from orchestrator_app.health import HEARTBEAT_STALE_S, workers_alive


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Render domain errors in the contract's ``{"ok": false, ...}`` shape.

    A database that cannot be reached becomes 503 with ``Retry-After`` (SPEC §4); anything
    DRF knows keeps DRF's rendering, wrapped in the same shape.
    """
    if isinstance(exc, DatabaseError) and not connection.is_usable():
        exc = ServiceUnavailable()
    if isinstance(exc, DomainError):
        return Response(exc.body(), status=exc.status_code, headers=exc.headers)
    response = drf_exception_handler(exc, context)
    if response is not None:
        detail = response.data.get("detail") if isinstance(response.data, dict) else None
        response.data = {
            "ok": False,
            "status": "rejected",
            "reason": str(detail) if detail else "invalid request",
            **({"errors": response.data} if detail is None else {}),
        }
    return response


class HealthView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        responses=inline_serializer("Health", {
            "ok": serializers.BooleanField(),
            "database": serializers.CharField(help_text='"up" or "unavailable"'),
            "worker": inline_serializer("WorkerHealth", {
                "alive": serializers.BooleanField(),
                "lastHeartbeatUtc": serializers.DateTimeField(allow_null=True),
                "dispatchers": serializers.IntegerField()}),
            "channelLayer": serializers.CharField()}),
        summary="Liveness of the database and the outbox worker (503 when either is down)",
    )
    def get(self, request: Request) -> Response:
        return _health(staff=bool(request.user and request.user.is_staff))


#: Live milestones reach every process through PostgreSQL's LISTEN/NOTIFY (feed_app/live.py).
CHANNEL_LAYER = "postgres"


def _health(*, staff: bool) -> Response:
    """SPEC §11. Version strings only for staff: an anonymous caller learns nothing a
    vulnerability scanner could use."""
    try:
        workers = workers_alive()
        version = _server_version() if staff else None
    except DatabaseError as exc:
        return Response(
            {"ok": False, "database": "unavailable", "reason": exc.__class__.__name__,
             "worker": {"alive": False, "lastHeartbeatUtc": None, "dispatchers": 0},
             "channelLayer": CHANNEL_LAYER},
            status=503, headers={"Retry-After": "5"})
    last = workers.last_heartbeat
    body: dict[str, Any] = {
        "ok": workers.alive > 0, "database": "up",
        "worker": {"alive": workers.alive > 0,
                   "lastHeartbeatUtc": js_iso_timestamp(last) if last else None,
                   "dispatchers": workers.alive},
        "channelLayer": CHANNEL_LAYER}
    if version:
        body["versions"] = {"postgres": version}
    if not workers.alive:
        body["reason"] = "no outbox worker has a heartbeat in the last " \
                         f"{HEARTBEAT_STALE_S:g} s"
        response = Response(body, status=503, headers={"Retry-After": "5"})
        # An answer, not a server error: a load balancer polling it while the workers are
        # down must not write an ERROR line per poll (the state is in /metrics).
        response._has_been_logged = True  # type: ignore[attr-defined]
        return response
    return Response(body)


def _server_version() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return str(cursor.fetchone()[0])


class OperatorOrLoopback(BasePermission):
    """Staff (an operator token or session), or a caller on this host: a Prometheus
    beside the server. Behind a proxy the address is the client's own
    (``clawdbot.forwarded``), never the proxy's, once the proxy is trusted."""

    message = "metrics are for an operator token or a caller on this host"

    def has_permission(self, request: Request, view: object) -> bool:
        if request.user and request.user.is_staff:
            return True
        try:
            local = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
        except ValueError:
            local = False
        if not local and not request.user:
            raise NotAuthenticated(self.message)
        return local


class MetricsView(APIView):
    permission_classes = [OperatorOrLoopback]

    @extend_schema(summary="Prometheus metrics, summed over every process (SPEC §11)",
                   responses={(200, "text/plain"): OpenApiTypes.STR})
    def get(self, request: Request) -> HttpResponse:
        body, content_type = metrics.exposition()
        return HttpResponse(body, content_type=content_type)
