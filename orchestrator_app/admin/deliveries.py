"""Deliveries in the admin: a read-only page per delivery with Requeue and Discard.

Nothing here is edited as a form: a delivery changes only through events, so the page
has no SAVE buttons and refuses POSTs; Requeue and Discard (each asking for a reason) go
through ``services.triage``, for users with the change permission on deliveries only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from clawdbot.console.templatetags.console import badge, ms
from clawdbot.counting import CappedCountPaginator
from orchestrator_app.admin.common import action_hidden, with_reason
from orchestrator_app.models import OPEN_STATUSES, UNDELIVERABLE_STATUSES, Delivery
from orchestrator_app.selectors import delivery_detail
from orchestrator_app.services import triage

TRIAGE: dict[str, tuple[str, tuple[str, ...], Callable[..., Delivery]]] = {
    "requeue": ("Requeue", UNDELIVERABLE_STATUSES, triage.delivery_requeue),
    "discard": ("Discard", (*UNDELIVERABLE_STATUSES, *OPEN_STATUSES), triage.delivery_discard),
}


class UndeliverableFilter(admin.SimpleListFilter):
    title = "dead letters"
    parameter_name = "undeliverable"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("yes", "Undeliverable (rejected, dead-letter)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(status__in=UNDELIVERABLE_STATUSES)
        return queryset


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("milestone_id", "target", "status_badge", "attempts", "last_status_code",
                    "last_attempt", "next_attempt", "created")
    list_filter = (UndeliverableFilter, "status", "target")
    search_fields = ("=milestone_id", "=idempotency_key")
    actions = ["requeue", "discard"]
    paginator = CappedCountPaginator
    show_full_result_count = False

    # -- permissions: the page is read-only; triage needs the change permission ----------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_triage_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.has_perm("orchestrator_app.change_delivery")

    # -- the list ---------------------------------------------------------------------------

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Delivery) -> str:
        return badge(obj.status)

    @admin.display(description="last attempt (UTC)", ordering="last_attempt_at")
    def last_attempt(self, obj: Delivery) -> str:
        return ms(obj.last_attempt_at)

    @admin.display(description="next attempt (UTC)", ordering="next_attempt_at")
    def next_attempt(self, obj: Delivery) -> str:
        return ms(obj.next_attempt_at)

    @admin.display(description="created (UTC)", ordering="created_at")
    def created(self, obj: Delivery) -> str:
        return ms(obj.created_at)

    @admin.action(description="Requeue selected deliveries (with a reason)",
                  permissions=["triage"])
    def requeue(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> HttpResponse | None:
        return self._triage(request, "requeue", queryset, action_hidden(request, queryset))

    @admin.action(description="Discard selected deliveries (with a reason)",
                  permissions=["triage"])
    def discard(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> HttpResponse | None:
        return self._triage(request, "discard", queryset, action_hidden(request, queryset))

    def _triage(self, request: HttpRequest, name: str, objects: Any,
                hidden: dict[str, Any]) -> HttpResponse | None:
        title, _, service = TRIAGE[name]
        return with_reason(self, request, objects, title=title, hidden=hidden,
                           apply=lambda d, who, why: service(delivery_id=str(d.pk), actor=who,
                                                             reason=why))

    # -- the page of one delivery -----------------------------------------------------------

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/requeue/", wrap(self.triage_view), {"name": "requeue"},
                 name="orchestrator_app_delivery_requeue"),
            path("<path:object_id>/discard/", wrap(self.triage_view), {"name": "discard"},
                 name="orchestrator_app_delivery_discard"),
            *super().get_urls(),
        ]

    def _delivery(self, request: HttpRequest, object_id: str) -> Delivery:
        delivery = self.get_object(request, unquote(object_id))
        if delivery is None:
            raise Http404(f"no delivery {object_id}")
        return delivery

    def triage_view(self, request: HttpRequest, object_id: str, name: str) -> HttpResponse:
        """Requeue or discard one delivery: GET asks for the reason, POST applies it."""
        if not self.has_triage_permission(request):
            raise PermissionDenied
        delivery = self._delivery(request, object_id)
        page = reverse("admin:orchestrator_app_delivery_change", args=[delivery.pk])
        return self._triage(request, name, [delivery], {}) or HttpResponseRedirect(page)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method != "GET":
            raise PermissionDenied  # nothing on this page is saved as a form
        delivery = self._delivery(request, object_id)
        may_triage = self.has_triage_permission(request)
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta,
            "title": f"Delivery of {delivery.milestone_id} to {delivery.target}",
            "detail": delivery_detail(delivery=delivery), "original": delivery,
            "actions": [(name, title) for name, (title, allowed, _) in TRIAGE.items()
                        if may_triage and delivery.status in allowed],
        }
        return TemplateResponse(request, "admin/orchestrator_app/delivery/page.html", context)
