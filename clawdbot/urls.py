from __future__ import annotations

from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_replace
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from clawdbot import api
from clawdbot.console import views as console_views

# The split view serves Swagger UI's start-up script as a file: no inline script. The UI
# injects <style> elements as it renders, so this page alone allows inline styles (CSP).
API_DOCS = csp_replace({"style-src": [SELF, UNSAFE_INLINE]})(
    SpectacularSwaggerSplitView.as_view(url_name="schema")
)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/health", api.HealthView.as_view(), name="health"),
    path("metrics", api.MetricsView.as_view(), name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", API_DOCS, name="api-docs"),
    # The ASGI servers serve no files: static assets (admin, API docs) come from the finders.
    re_path(r"^static/(?P<path>.+)$", console_views.static_file),
    path("favicon.ico", console_views.favicon),
    path("", include("orchestrator_app.urls")),
    path("", include("feed_app.urls")),
]
