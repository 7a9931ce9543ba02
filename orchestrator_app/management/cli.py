"""What the orchestrator's commands share: target names, readable errors, short labels."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from django.core.management.base import CommandError

from orchestrator_app.models import Target

_SPACE = re.compile(r"\s+")


def target_named(name: str) -> Target:
    """The target called ``name``; a CommandError naming the known ones when there is none."""
    target = Target.objects.filter(name=name).first()
    if target is None:
        known = ", ".join(Target.objects.order_by("name").values_list("name", flat=True))
        raise CommandError(f"no target named {name!r} (known: {known or 'none'})")
    return target


def errors_text(errors: Mapping[str, Sequence[str]] | None, *, prefix: str = "") -> str:
    """Field errors as ``path: message; path: message``; the root path reads "(root)"."""
    parts = []
    for path, messages in (errors or {}).items():
        where = ".".join(p for p in (prefix, path) if p) or "(root)"
        parts.append(f"{where}: {' '.join(messages)}")
    return "; ".join(parts)


def json_error_text(exc: json.JSONDecodeError) -> str:
    """``Expecting value at column 7`` (a line number when the text has several lines)."""
    where = f"line {exc.lineno} column {exc.colno}" if exc.lineno > 1 else f"column {exc.colno}"
    return f"{exc.msg} at {where}"


def shorten(text: str, width: int = 80) -> str:
    """``text`` on one line, cut at a word boundary with an ellipsis when longer than
    ``width``; a single word longer than the whole width is the only thing cut inside."""
    flat = _SPACE.sub(" ", text).strip()
    if len(flat) <= width:
        return flat
    cut = flat[: width - 1]
    if flat[width - 1] != " " and " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.") + "…"
