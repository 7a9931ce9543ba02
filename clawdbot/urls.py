from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from clawdbot import api
from clawdbot.console import views as console_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/health", api.HealthView.as_view(), name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # The ASGI servers serve no files: static assets (admin, API docs) come from the finders.
    re_path(r"^static/(?P<path>.+)$", console_views.static_file),
    path("favicon.ico", console_views.favicon),
    path("", include("orchestrator_app.urls")),
    path("", include("feed_app.urls")),
]
