from __future__ import annotations

from django.contrib import admin
from django.contrib.staticfiles.views import serve as serve_static
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from clawdbot import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/health", api.HealthView.as_view(), name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # The ASGI servers serve no files: static assets (admin, API docs) come from the finders.
    re_path(r"^static/(?P<path>.+)$", serve_static, {"insecure": True}),
    path("", include("orchestrator_app.urls")),
    path("", include("feed_app.urls")),
]
