"""Server-rendered SVG charts: no script, no CDN, nothing for a CSP to refuse."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 180, 40, 22, 8


def stacked_bars(hourly: Sequence[tuple[datetime, dict[str, int]]],
                 series: Sequence[tuple[str, str]], *, label: str) -> SafeString:
    """One stacked bar per hour; ``series`` is (key, colour), bottom first. Each segment
    has a tooltip with its hour and count; the axis shows the highest total."""
    top = max((sum(c.get(k, 0) for k, _ in series) for _, c in hourly), default=0) or 1
    slot = (WIDTH - LEFT) / max(1, len(hourly))
    plot = HEIGHT - BOTTOM - TOP
    rects, ticks = [], []
    for n, (hour, counts) in enumerate(hourly):
        x, base = LEFT + n * slot + 1, float(HEIGHT - BOTTOM)
        for key, colour in series:
            value = counts.get(key, 0)
            if not value:
                continue
            h = max(1.0, plot * value / top)
            base -= h
            rects.append((f"{x:.1f}", f"{base:.1f}", f"{slot - 2:.1f}", f"{h:.1f}", colour,
                          f"{hour:%H}:00 UTC: {value} {key}"))
        if n % 3 == 0:
            ticks.append((f"{x:.1f}", HEIGHT - 6, f"{hour:%H}h"))
    return format_html(
        '<svg class="cb-chart" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="currentColor" stroke-opacity=".3"/>'
        '<text x="0" y="{}" font-size="11" fill="currentColor">{}</text>'
        '<text x="0" y="{}" font-size="11" fill="currentColor">0</text>{}{}</svg>',
        WIDTH, HEIGHT, label, LEFT, HEIGHT - BOTTOM, WIDTH, HEIGHT - BOTTOM, TOP + 10, top,
        HEIGHT - BOTTOM, format_html_join(
            "", '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
            rects),
        format_html_join("", '<text x="{}" y="{}" font-size="10" fill="currentColor">{}'
                         "</text>", ticks))


def legend(series: Sequence[tuple[str, str]]) -> SafeString:
    return format_html('<p class="cb-legend">{}</p>', format_html_join(
        "", '<span><i class="cb-s-{}"></i>{}</span>', [(k, k) for k, _ in series]))
