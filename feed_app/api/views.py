"""HTTP endpoints of the feed side: plumbing between the wire and services/selectors."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clawdbot.permissions import OperatorPermission
from feed_app import batch, selectors, services
from feed_app.api import params
from feed_app.api import serializers as s
from feed_app.api.body import ingest_request

_REJECTED = OpenApiResponse(s.RejectedSerializer)


class JsonWhateverAccepted(BaseContentNegotiation):
    """Answer JSON whatever the client accepts, as the reference does.

    DRF's default negotiation answers 406 to ``Accept: text/plain`` before the view runs:
    a signed milestone would be refused, and not recorded in the dead-letter.
    """

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: Any, format_suffix: Any = None) -> Any:
        return renderers[0], renderers[0].media_type


class FeedView(APIView):
    """The feed's endpoints answer JSON whatever the client accepts."""

    content_negotiation_class = JsonWhateverAccepted


class PublicFeedView(FeedView):
    """Anyone, and no authentication (so no session CSRF check on the signed ingest)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]


class IngestView(PublicFeedView):
    @extend_schema(
        summary="Ingest a signed milestone envelope (SPEC §3-4)",
        request=s.EnvelopeSerializer,
        parameters=s.INGEST_HEADERS,
        responses={200: s.IngestOkSerializer, 400: _REJECTED, 401: _REJECTED, 413: _REJECTED,
                   503: _REJECTED},
    )
    def post(self, request: Request) -> Response:
        result = services.envelope_ingest(request=ingest_request(request))
        return Response(result.body())


class BatchIngestView(PublicFeedView):
    @extend_schema(
        summary="Ingest a signed batch of up to 1,000 envelopes (SPEC §10)",
        request=s.BatchSerializer,
        parameters=s.INGEST_HEADERS,
        responses={200: s.BatchOkSerializer, 400: _REJECTED, 401: _REJECTED, 413: _REJECTED,
                   503: _REJECTED},
    )
    def post(self, request: Request) -> Response:
        body = ingest_request(request, limit=settings.MILESTONE_INGEST_BATCH_MAX_BYTES)
        response = Response(batch.batch_ingest(request=body).body())
        # A batch holds one web process's CPU for a tenth of a second: closing the
        # connection sends the sender's next batch to whichever process accepts first, the
        # idle one, where a kept-alive connection would queue behind its busy process
        # (docs/PERFORMANCE.md, "Batches on several web processes").
        response["Connection"] = "close"
        return response


_FILTERS = [
    OpenApiParameter("limit", str, description="1…50, default 20 (parsed as parseInt)"),
    OpenApiParameter("before", str, description="nextCursor of the previous page"),
    OpenApiParameter("scope", str),
    OpenApiParameter("riskStatus", str),
    OpenApiParameter("source", str),
]


class FeedLatestView(PublicFeedView):
    @extend_schema(summary="Latest milestones, newest timestampUtc first", parameters=_FILTERS,
                   responses={200: s.FeedPageSerializer, 400: _REJECTED})
    def get(self, request: Request) -> HttpResponse:
        page = selectors.feed_page(**params.feed_page_args(request.query_params))
        return HttpResponse(params.feed_page_json(page), content_type="application/json")


class MilestoneDetailView(PublicFeedView):
    @extend_schema(summary="One stored milestone by idempotencyKey",
                   responses={200: s.FeedOneSerializer, 404: _REJECTED})
    def get(self, request: Request, idempotency_key: str) -> Response:
        item = selectors.milestone_get(idempotency_key=idempotency_key)
        return Response({"ok": True, "item": item})


class DeadLetterView(FeedView):
    permission_classes = [OperatorPermission]
    required = {"GET": "feed_app.view_deadletter"}

    @extend_schema(
        summary="Rejected ingest requests, newest first (operators only)",
        parameters=[OpenApiParameter("limit", int, description="1…200, default 50"),
                    OpenApiParameter("before", int, description="id to page below")],
        responses={200: s.DeadLetterPageSerializer, 401: _REJECTED, 403: _REJECTED},
    )
    def get(self, request: Request) -> Response:
        items, count = selectors.dead_letter_list(**params.dead_letter_args(request.query_params))
        return Response({"ok": True, "items": items, "count": count.value,
                         "countExact": count.exact})

