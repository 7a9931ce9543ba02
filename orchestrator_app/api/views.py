"""Orchestrator HTTP API: plumbing around ``milestone_emit`` and ``delivery_page``."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clawdbot.permissions import OperatorPermission
from orchestrator_app import selectors
from orchestrator_app.api import serializers as s
from orchestrator_app.api.idempotency import idempotency_key_header
from orchestrator_app.exceptions import UnknownTarget
from orchestrator_app.health import targets_with_health
from orchestrator_app.models import Target
from orchestrator_app.services import triage
from orchestrator_app.services.emit import milestone_emit, milestone_emit_once, request_fingerprint
from orchestrator_app.services.targets import (
    TargetInvalid,
    target_create,
    target_rotate_secrets,
    target_update,
)


class OperatorView(APIView):
    """The orchestrator's endpoints: staff users (DRF token or staff session) holding the
    model permission each method names in ``required`` (clawdbot.permissions)."""

    permission_classes = [OperatorPermission]
    required: dict[str, str] = {}


_VIEW, _ADD, _CHANGE = ("orchestrator_app.view_target", "orchestrator_app.add_target",
                        "orchestrator_app.change_target")


class MilestoneEmitView(OperatorView):
    required = {"POST": "orchestrator_app.add_emittedmilestone"}

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
    required = {"GET": "orchestrator_app.view_delivery"}

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


def _actor(request: Request) -> str:
    return request.user.get_username()


def _valid(serializer: Any) -> Any:
    serializer.is_valid(raise_exception=True)
    return serializer


def _target_answer(name: str, *, status_code: int = 200) -> Response:
    target = targets_with_health(Target.objects.filter(name=name), now=timezone.now()).first()
    if target is None:
        raise UnknownTarget(f"no target named {name!r}")
    return Response(s.TargetSerializer(target).data, status=status_code)


class TargetListView(OperatorView):
    required = {"GET": _VIEW, "POST": _ADD}

    @extend_schema(responses=s.TargetSerializer(many=True),
                   summary="Targets with their health (secrets as fingerprints)")
    def get(self, request: Request) -> Response:
        listed = targets_with_health(Target.objects.order_by("name"), now=timezone.now())
        return Response({"ok": True, "items": s.TargetSerializer(listed[:500], many=True).data})

    @extend_schema(request=s.TargetWriteSerializer, responses={201: s.TargetSerializer},
                   summary="Create a target (secrets are write-only, encrypted at rest)")
    def post(self, request: Request) -> Response:
        incoming = _valid(s.TargetWriteSerializer(data=request.data))
        name = incoming.validated_data.get("name")
        if not name:
            raise TargetInvalid("a target needs a name", errors={"name": ["required"]})
        target_create(name=name, values=incoming.model_values(), actor=_actor(request))
        return _target_answer(name, status_code=status.HTTP_201_CREATED)


class TargetDetailView(OperatorView):
    required = {"GET": _VIEW, "PATCH": _CHANGE}

    @extend_schema(responses=s.TargetSerializer, summary="One target with its health")
    def get(self, request: Request, name: str) -> Response:
        return _target_answer(name)

    @extend_schema(request=s.TargetWriteSerializer, responses=s.TargetSerializer,
                   summary="Change a target's settings (a secret given replaces the held ones)")
    def patch(self, request: Request, name: str) -> Response:
        incoming = _valid(s.TargetWriteSerializer(data=request.data, partial=True))
        if incoming.validated_data.get("name", name) != name:
            raise TargetInvalid("a target cannot be renamed (its deliveries name it)",
                                errors={"name": ["read-only"]})
        target_update(name=name, values=incoming.model_values(), actor=_actor(request))
        return _target_answer(name)


class TargetPauseView(OperatorView):
    required = {"POST": _CHANGE}
    resume = False

    @extend_schema(request=s.ReasonSerializer, responses=s.TargetSerializer,
                   summary="Pause (or resume) a target's deliveries, with a reason")
    def post(self, request: Request, name: str) -> Response:
        reason = _valid(s.ReasonSerializer(data=request.data)).validated_data["reason"]
        action = triage.target_resume if self.resume else triage.target_pause
        action(name=name, actor=_actor(request), reason=reason)
        return _target_answer(name)


class TargetRotateSecretView(OperatorView):
    required = {"POST": _CHANGE}

    @extend_schema(request=s.RotateSecretSerializer, responses=s.TargetSerializer,
                   summary="Rotate secrets: the new one signs first, the old ones stay until "
                   "removed")
    def post(self, request: Request, name: str) -> Response:
        incoming = _valid(s.RotateSecretSerializer(data=request.data))
        target_rotate_secrets(name=name, secrets=incoming.model_values(), actor=_actor(request))
        return _target_answer(name)
