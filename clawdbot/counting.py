"""Counting rows without scanning a whole table.

``SELECT count(*)`` reads every row PostgreSQL may see, so on a table a flood can grow it
costs more the more junk there is. ``capped_count`` counts exactly up to a cap (an index
scan of at most ``cap + 1`` rows) and past it answers the planner's estimate, which the
statistics keep near the truth at no cost per query.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

#: Counts are exact up to this many rows.
COUNT_CAP = 10_000


@dataclass(frozen=True)
class Count:
    value: int
    exact: bool


def table_estimate(queryset: QuerySet) -> int:
    """The planner's row estimate for ``queryset`` (its EXPLAIN), never a scan."""
    sql, params = queryset.order_by().query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (plan,) = cursor.fetchone()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def capped_count(queryset: QuerySet, cap: int | None = None) -> Count:
    """Exact up to ``cap`` rows; past it, the planner's estimate (at least ``cap + 1``)."""
    cap = COUNT_CAP if cap is None else cap
    exact = queryset.order_by()[: cap + 1].count()
    if exact <= cap:
        return Count(exact, True)
    return Count(max(cap + 1, table_estimate(queryset)), False)


class CappedCountPaginator(Paginator):
    """The admin changelist's paginator, counting with ``capped_count``."""

    @cached_property
    def count(self) -> int:
        if isinstance(self.object_list, QuerySet):
            return capped_count(self.object_list).value
        return len(self.object_list)
