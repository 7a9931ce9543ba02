"""Static files and the favicon, answered as plain responses.

The ASGI servers serve no files, so static assets (the admin's, the console's, the API
docs' Swagger UI) come from the staticfiles finders. Django's ``serve`` answers with a
``FileResponse``, whose synchronous iterator Django warns about under ASGI on every asset
(``/api/docs/`` loads several); these files are small, so they are read whole instead.
"""

from __future__ import annotations

import mimetypes
import posixpath
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.http import http_date
from django.views.decorators.http import require_safe

FAVICON = "console/favicon.svg"


@require_safe
def static_file(request: HttpRequest, path: str) -> HttpResponse:
    found = finders.find(posixpath.normpath(path).lstrip("/"))
    if not found or not Path(found).is_file():
        raise Http404(f"no static file {path}")
    file = Path(found)
    content_type, encoding = mimetypes.guess_type(file.name)
    response = HttpResponse(file.read_bytes(),
                            content_type=content_type or "application/octet-stream")
    response["Last-Modified"] = http_date(file.stat().st_mtime)
    if encoding:
        response["Content-Encoding"] = encoding
    return response


def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``, which browsers ask for on every page."""
    response = static_file(request, FAVICON)
    response["Cache-Control"] = "public, max-age=86400"
    return response
