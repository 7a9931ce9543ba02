"""Orchestrator HTTP API: plumbing around ``milestone_emit`` and ``delivery_page``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator_app import selectors
from orchestrator_app.api import serializers as s
from orchestrator_app.api.idempotency import idempotency_key_header
from orchestrator_app.services.emit import milestone_emit, milestone_emit_once, request_fingerprint


class OperatorView(APIView):
    """The orchestrator's endpoints: staff users only (DRF token or staff session)."""

    permission_classes = [IsAdminUser]


class MilestoneEmitView(OperatorView):
    @extend_schema(request=s.EmitRequestSerializer, responses={202: s.EmitResponseSerializer},
                   parameters=[s.IDEMPOTENCY_KEY_PARAMETER],
                   summary="Emit a milestone and queue it for every active target")
    def post(self, request: Request) -> Response:
        key = idempotency_key_header(request)
        incoming = s.EmitRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        context = dict(incoming.validated_data.get("context") or {})
        actor = context.get("actor") or request.user.get_username()
        event = incoming.validated_data["event"]
        if key is None:
            result = milestone_emit(event=event, context=context, actor=actor)
        else:
            result = milestone_emit_once(
                idempotency_key=key, event=event, context=context, actor=actor,
                request_sha256=request_fingerprint(request.data))
        headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
        return Response(s.EmitResponseSerializer(result).data, status=status.HTTP_202_ACCEPTED,
                        headers=headers)


class DeliveryListView(OperatorView):
    @extend_schema(parameters=[s.DeliveryQuerySerializer],
                   responses=s.DeliverySerializer(many=True),
                   summary="Delivery records, newest first, with cursor pagination")
    def get(self, request: Request) -> Response:
        params = request.query_params.copy()  # ?status=a,b and ?status=a&status=b alike
        params.setlist("status",
                       [p for v in params.getlist("status") for p in v.split(",") if p])
        query = s.DeliveryQuerySerializer(data=params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        page = selectors.delivery_page(status=sorted(q.get("status") or ()), target=q["target"],
                                       milestone_id=q["milestoneId"], cursor=q["cursor"],
                                       limit=q["limit"])
        items = s.DeliverySerializer(page.items, many=True).data
        return Response({"ok": True, "items": items, "next": page.next_cursor})
