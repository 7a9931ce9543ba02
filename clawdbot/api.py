"""Project-wide HTTP plumbing: the DRF exception handler and the health endpoint."""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError, connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from clawdbot.errors import DomainError, ServiceUnavailable


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
        responses=inline_serializer(
            "Health", {"ok": serializers.BooleanField(), "database": serializers.CharField()}
        ),
        summary="Liveness and database reachability",
    )
    def get(self, request: Request) -> Response:
        return _health()


def _health() -> Response:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            version = cursor.fetchone()[0]
    except DatabaseError as exc:
        return Response(
            {"ok": False, "database": f"unavailable: {exc.__class__.__name__}"},
            status=503,
            headers={"Retry-After": "5"},
        )
    return Response({"ok": True, "database": version.split(" on ")[0]})
