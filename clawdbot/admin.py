"""Admin building blocks shared by the event store and both apps."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import connection
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from clawdbot.counting import CappedCountPaginator


class ReadOnlyAdmin(admin.ModelAdmin):
    """Browsable, never editable: for events and the projections built from them.

    These tables grow with traffic, so the changelist never counts a whole one: the
    paginator counts exactly up to a cap and estimates past it, and the "N total" link
    (a second full count) is off.
    """

    paginator = CappedCountPaginator
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


_LOOSE_INDEX_SCAN = """
WITH RECURSIVE v(value) AS (
    (SELECT {col} FROM {table} ORDER BY {col} LIMIT 1)
    UNION ALL
    SELECT (SELECT {col} FROM {table} WHERE {col} > v.value ORDER BY {col} LIMIT 1)
    FROM v WHERE v.value IS NOT NULL
)
SELECT value FROM v WHERE value IS NOT NULL LIMIT %s
"""


def indexed_values_filter(field: str, title: str, limit: int = 200) -> type[admin.SimpleListFilter]:
    """A list filter offering a column's distinct values, found by a loose index scan.

    Django's default filter runs ``SELECT DISTINCT`` over the whole table; this walks an
    index whose first column is ``field`` one value at a time (a few index probes per
    distinct value), so it costs the same on ten rows or ten million.
    """

    class IndexedValuesFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            meta = model_admin.model._meta
            quote = connection.ops.quote_name
            sql = _LOOSE_INDEX_SCAN.format(col=quote(meta.get_field(field).column),
                                           table=quote(meta.db_table))
            with connection.cursor() as cursor:
                cursor.execute(sql, [limit])
                return [(value, value) for (value,) in cursor.fetchall()]

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            value = self.value()
            return queryset.filter(**{field: value}) if value else queryset

    IndexedValuesFilter.title = title
    return IndexedValuesFilter
