"""The admin site of the console: branded, outbox first, with the overview on its index."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

#: The order of the apps on the index and in the sidebar: what an operator looks at first.
APP_ORDER = ("orchestrator_app", "feed_app", "eventstore", "django_q", "auth", "authtoken")


class ConsoleSite(admin.AdminSite):
    site_header = "ClawDBot operations"
    site_title = "ClawDBot operations"
    index_title = "Overview"

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        apps = super().get_app_list(request, app_label)
        rank = {label: n for n, label in enumerate(APP_ORDER)}
        return sorted(apps, key=lambda a: rank.get(a["app_label"], len(rank)))

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None
              ) -> TemplateResponse:
        from clawdbot.console.overview import overview

        return super().index(request, {"overview": overview(), **(extra_context or {})})
