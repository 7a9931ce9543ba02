"""What the outbox admin screens share: the reason form and applying an action with it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django import forms
from django.contrib import admin, messages
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from clawdbot.errors import DomainError

_M = TypeVar("_M", bound=Model)


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


def with_reason(
    modeladmin: admin.ModelAdmin, request: HttpRequest, objects: Iterable[_M], *, title: str,
    apply: Callable[[_M, str, str], object], hidden: dict[str, Any] | None = None,
) -> HttpResponse | None:
    """Ask for a reason on an intermediate page, then apply the action to each object.

    ``None`` once applied (the caller redirects); the reason page until then. ``hidden``
    are the fields the page posts back (the changelist action and its selection).
    """
    return with_form(modeladmin, request, objects, title=title, form_class=ReasonForm,
                     hidden=hidden, apply=lambda obj, who, data: apply(obj, who, data["reason"]))


def with_form(
    modeladmin: admin.ModelAdmin, request: HttpRequest, objects: Iterable[_M], *, title: str,
    form_class: type[forms.Form], apply: Callable[[_M, str, dict[str, Any]], object],
    hidden: dict[str, Any] | None = None,
) -> HttpResponse | None:
    """``with_reason`` with any form: its cleaned data goes to ``apply``."""
    form = form_class(request.POST if "apply" in request.POST else None)
    objects = list(objects)
    if not form.is_valid():
        context = {**modeladmin.admin_site.each_context(request), "title": title,
                   "form": form, "objects": objects, "hidden": hidden or {},
                   "opts": modeladmin.model._meta}
        return TemplateResponse(request, "admin/orchestrator_app/reason.html", context)
    done, failed = 0, 0
    for obj in objects:
        try:
            apply(obj, request.user.get_username(), form.cleaned_data)
            done += 1
        except DomainError as exc:
            failed += 1
            modeladmin.message_user(request, f"{obj}: {exc.reason}", messages.WARNING)
    modeladmin.message_user(request, f"{title}: {done} done, {failed} skipped.",
                            messages.SUCCESS if done else messages.WARNING)
    return None


def action_hidden(request: HttpRequest, objects: Iterable[Model]) -> dict[str, Any]:
    """The fields a changelist action's reason page posts back to apply it."""
    return {"action": request.POST["action"],
            "_selected_action": [str(obj.pk) for obj in objects]}
