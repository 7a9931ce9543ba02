"""Targets in the admin: health in the list, pause/resume with a reason, secrets masked.

A secret is never shown, to anyone: the form's secret fields are write-only (blank keeps
the stored ones) and the page shows a fingerprint of each instead.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from clawdbot.console.templatetags.console import badge, ms, success_rate
from clawdbot.contract import webhook_secret_valid
from orchestrator_app.admin.common import action_hidden, with_form, with_reason
from orchestrator_app.health import targets_with_health
from orchestrator_app.models import Target
from orchestrator_app.services import triage
from orchestrator_app.services.targets import (
    SETTINGS,
    fingerprints,
    target_configured_record,
    target_rotate_secrets,
)

SECRET_FIELDS = ("legacy_secrets", "webhook_secrets")


def fingerprint(secrets: str) -> str:
    """The last four characters of each secret (the first one signs); never more."""
    return ", ".join(fingerprints(secrets)) or "— (from settings)"


class TargetForm(forms.ModelForm):
    """The target form with write-only secrets: a blank secret field keeps what is stored."""

    legacy_secrets = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False),
        help_text="Comma-separated; the first signs. Blank keeps the stored ones.")
    webhook_secrets = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False),
        help_text="Comma-separated whsec_…; the first signs. Blank keeps the stored ones.")

    class Meta:
        model = Target
        fields = ("name", "url", "sign_legacy", "sign_webhook", "legacy_secrets", "webhook_secrets",
                  "is_active", "timeout_s", "retry_schedule", "supports_batch")

        @staticmethod
        def formfield_callback(field: models.Field, **kwargs: Any) -> forms.Field | None:
            # A URL typed without a scheme is taken as https (Django 6's default, chosen now).
            if isinstance(field, models.URLField):
                kwargs.setdefault("assume_scheme", "https")
            return field.formfield(**kwargs)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in SECRET_FIELDS:
            if not cleaned.get(name) and self.instance.pk is not None:
                cleaned[name] = getattr(self.instance, name)
        return cleaned


class RotateSecretsForm(forms.Form):
    """New secrets for the rotate action: each goes first, the held ones stay after it."""

    signing_secret = forms.CharField(
        required=False, min_length=16, widget=forms.PasswordInput(render_value=False),
        label="New legacy signing secret", help_text="Signs from now on; blank: unchanged.")
    webhook_secret = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False),
        label="New webhook secret (whsec_…)", help_text="Blank: unchanged.")

    def clean_webhook_secret(self) -> str:
        value = self.cleaned_data["webhook_secret"].strip()
        if value and not webhook_secret_valid(value):
            raise forms.ValidationError("A webhook secret is 'whsec_' followed by base64.")
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("signing_secret") and not cleaned.get("webhook_secret"):
            raise forms.ValidationError("Give a new signing secret, a webhook secret, or both.")
        if "," in cleaned.get("signing_secret", ""):
            raise forms.ValidationError("One secret at a time, no comma.")
        return cleaned

    @staticmethod
    def secrets(data: dict[str, Any]) -> dict[str, str]:
        return {field: data[name].strip() for name, field in (
            ("signing_secret", "legacy_secrets"), ("webhook_secret", "webhook_secrets"))
            if data.get(name)}


@admin.register(Target)
class TargetAdmin(admin.ModelAdmin):
    form = TargetForm
    list_display = ("name", "resolved", "state", "last", "rate", "failing", "due_count",
                    "undeliverable_count")
    actions = ["send_test", "pause", "resume", "rotate_secrets"]
    # A URL typed without a scheme is taken as https (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    # Deliveries refer to their target by name and are claimed only while it exists: a
    # renamed or deleted target would leave its open deliveries pending forever. Clear
    # "is active" to stop new deliveries, or pause it to hold the open ones.
    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return ["paused_at", "paused_reason", "legacy_fingerprint", "webhook_fingerprint",
                *(["name"] if obj is not None else [])]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_fields(request, obj))
        if obj is not None and not self.has_change_permission(request, obj):
            fields = [f for f in fields if f not in SECRET_FIELDS]  # read-only: no secrets
        return fields

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Target, form: forms.ModelForm,
                   change: bool) -> None:
        """Saved with its event, as the API saves it (``services.targets``)."""
        fields = [name for name in SETTINGS if name in form.changed_data
                  and (name not in SECRET_FIELDS or form.data.get(name))]
        with transaction.atomic():  # inside the admin view's own transaction
            super().save_model(request, obj, form, change)
            target_configured_record(obj, actor=request.user.get_username(),
                                     change="changed" if change else "created", fields=fields)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Target]:
        return targets_with_health(super().get_queryset(request), now=timezone.now())

    @admin.display(description="URL")
    def resolved(self, obj: Target) -> str:
        return obj.resolved_url()

    @admin.display(description="state")
    def state(self, obj: Target) -> str:
        if obj.paused_at is not None:
            return format_html('{} <span class="cb-meta">{}</span>', badge("paused"),
                               obj.paused_reason)
        return badge("active") if obj.is_active else badge("inactive")

    @admin.display(description="last outcome")
    def last(self, obj: Target) -> str:
        outcome = getattr(obj, "last_outcome", None)
        if not outcome:
            return "—"
        return format_html('{} <span class="cb-meta">{}</span>', badge(outcome),
                           ms(getattr(obj, "last_attempt_at", None)))

    @admin.display(description="24 h success")
    def rate(self, obj: Target) -> str:
        return success_rate(obj)

    @admin.display(description="failing since (UTC)")
    def failing(self, obj: Target) -> str:
        since = getattr(obj, "failing_since", None)
        return format_html('<span class="cb-alert">{}</span>', ms(since)) if since else "—"

    @admin.display(description="due")
    def due_count(self, obj: Target) -> str:
        url = reverse("admin:orchestrator_app_delivery_changelist")
        return format_html('<a href="{}?target={}&amp;status=retrying">{}</a>', url, obj.name,
                           getattr(obj, "due", 0))

    @admin.display(description="undeliverable")
    def undeliverable_count(self, obj: Target) -> str:
        url = reverse("admin:orchestrator_app_delivery_changelist")
        return format_html('<a href="{}?target={}&amp;undeliverable=yes">{}</a>', url, obj.name,
                           getattr(obj, "undeliverable", 0))

    @admin.action(description="Send a test milestone to selected targets",
                  permissions=["change"])
    def send_test(self, request: HttpRequest, queryset: QuerySet[Target]) -> None:
        for target in queryset:
            delivery = triage.target_test_send(name=target.name,
                                               actor=request.user.get_username())
            url = reverse("admin:orchestrator_app_delivery_change", args=[delivery.pk])
            self.message_user(request, format_html(
                'Test milestone queued for {}: <a href="{}">its delivery</a>.', target.name,
                url), messages.SUCCESS)

    @admin.display(description="legacy secret fingerprint")
    def legacy_fingerprint(self, obj: Target) -> str:
        return fingerprint(obj.legacy_secrets)

    @admin.display(description="webhook secret fingerprint")
    def webhook_fingerprint(self, obj: Target) -> str:
        return fingerprint(obj.webhook_secrets)

    @admin.action(description="Pause selected targets (with a reason)", permissions=["change"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Target]) -> HttpResponse | None:
        return with_reason(self, request, queryset, title="Pause",
                           hidden=action_hidden(request, queryset), apply=lambda t, who, why:
                           triage.target_pause(name=t.name, actor=who, reason=why))

    @admin.action(description="Rotate secrets of selected targets (the new one signs)",
                  permissions=["change"])
    def rotate_secrets(self, request: HttpRequest, queryset: QuerySet[Target]
                       ) -> HttpResponse | None:
        def rotate(target: Target, who: str, data: dict[str, Any]) -> object:
            return target_rotate_secrets(name=target.name, actor=who,
                                         secrets=RotateSecretsForm.secrets(data))

        return with_form(self, request, queryset, title="Rotate secrets",
                         form_class=RotateSecretsForm, hidden=action_hidden(request, queryset),
                         apply=rotate)

    @admin.action(description="Resume selected targets (with a reason)", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Target]) -> HttpResponse | None:
        return with_reason(self, request, queryset, title="Resume",
                           hidden=action_hidden(request, queryset), apply=lambda t, who, why:
                           triage.target_resume(name=t.name, actor=who, reason=why))
