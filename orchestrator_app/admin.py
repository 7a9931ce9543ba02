"""Outbox triage in the admin: targets, deliveries (dead letters first), every attempt.

Requeue, discard and pause/resume go through the same services as the commands, each with
a reason form, so every operator action is an event naming who and why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html

from clawdbot.admin import ReadOnlyAdmin
from clawdbot.errors import DomainError
from orchestrator_app.models import (
    UNDELIVERABLE_STATUSES,
    Delivery,
    DeliveryAttempt,
    EmittedMilestone,
    Target,
)
from orchestrator_app.services import triage

_M = TypeVar("_M", bound=Model)


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


def _with_reason(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[_M], *, title: str,
    apply: Callable[[_M, str, str], object],
) -> HttpResponse | None:
    """Ask for a reason on an intermediate page, then apply the action to each row."""
    form = ReasonForm(request.POST if "apply" in request.POST else None)
    if not form.is_valid():
        context = {**modeladmin.admin_site.each_context(request), "title": title,
                   "form": form, "objects": queryset, "action": request.POST["action"],
                   "opts": modeladmin.model._meta}
        return TemplateResponse(request, "admin/orchestrator_app/reason.html", context)
    done, failed = 0, 0
    for obj in queryset:
        try:
            apply(obj, request.user.get_username(), form.cleaned_data["reason"])
            done += 1
        except DomainError as exc:
            failed += 1
            modeladmin.message_user(request, f"{obj}: {exc.reason}", messages.WARNING)
    modeladmin.message_user(request, f"{title}: {done} done, {failed} skipped.")
    return None


class UndeliverableFilter(admin.SimpleListFilter):
    title = "dead letters"
    parameter_name = "undeliverable"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("yes", "Undeliverable (rejected, dead-letter)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(status__in=UNDELIVERABLE_STATUSES)
        return queryset


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("number", "attempted_at", "outcome", "status_code", "duration_ms", "error",
              "response_excerpt", "worker")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("milestone_id", "target", "status", "attempts", "last_status_code",
                    "last_attempt_at", "next_attempt_at", "created_at")
    list_filter = (UndeliverableFilter, "status", "target")
    search_fields = ("milestone_id", "idempotency_key")
    inlines = [AttemptInline]
    actions = ["requeue", "discard"]

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Requeue selected deliveries (with a reason)")
    def requeue(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> HttpResponse | None:
        return _with_reason(self, request, queryset, title="Requeue", apply=lambda d, who, why:
                            triage.delivery_requeue(delivery_id=str(d.pk), actor=who, reason=why))

    @admin.action(description="Discard selected deliveries (with a reason)")
    def discard(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> HttpResponse | None:
        return _with_reason(self, request, queryset, title="Discard", apply=lambda d, who, why:
                            triage.delivery_discard(delivery_id=str(d.pk), actor=who, reason=why))


@admin.register(Target)
class TargetAdmin(admin.ModelAdmin):
    list_display = ("name", "resolved", "is_active", "paused_at", "paused_reason", "timeout_s")
    actions = ["pause", "resume"]
    # A URL typed without a scheme is taken as https (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    # Deliveries refer to their target by name and are claimed only while it exists: a
    # renamed or deleted target would leave its open deliveries pending forever. Clear
    # "is active" to stop new deliveries, or pause it to hold the open ones.
    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return ["paused_at", "paused_reason", *(["name"] if obj is not None else [])]

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="URL")
    def resolved(self, obj: Target) -> str:
        return obj.resolved_url()

    @admin.action(description="Pause selected targets (with a reason)")
    def pause(self, request: HttpRequest, queryset: QuerySet[Target]) -> HttpResponse | None:
        return _with_reason(self, request, queryset, title="Pause", apply=lambda t, who, why:
                            triage.target_pause(name=t.name, actor=who, reason=why))

    @admin.action(description="Resume selected targets (with a reason)")
    def resume(self, request: HttpRequest, queryset: QuerySet[Target]) -> HttpResponse | None:
        return _with_reason(self, request, queryset, title="Resume", apply=lambda t, who, why:
                            triage.target_resume(name=t.name, actor=who, reason=why))


@admin.register(EmittedMilestone)
class EmittedMilestoneAdmin(ReadOnlyAdmin):
    list_display = ("milestone_id", "sent_at_utc", "actor", "idempotency_key")
    search_fields = ("milestone_id", "idempotency_key")
    readonly_fields = ("idempotency_key", "milestone_id", "sent_at_utc", "actor", "pretty_event",
                       "sent_envelope", "context", "position")
    exclude = ("event", "envelope", "sent_at")

    @admin.display(description="event")
    def pretty_event(self, obj: EmittedMilestone) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.event, indent=2, ensure_ascii=False))

    @admin.display(description="envelope sent (exact bytes)")
    def sent_envelope(self, obj: EmittedMilestone) -> str:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', obj.envelope)
