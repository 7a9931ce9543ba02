"""Find content a received body may carry but the pipeline must not store.

PostgreSQL ``text`` and ``jsonb`` refuse NUL, and UTF-8 cannot encode a lone surrogate,
yet both arrive legally as JSON escapes (``\\u0000``, ``\\ud800``), and a number beyond a
double (``1e400``) parses to infinity, which JSON and ``jsonb`` cannot hold. Separately, a
``__proto__`` key is dropped by the reference's canonical form, so the legacy signature
cannot vouch for it. Each finding names the path of the offending key or value, written
so that the path itself is always storable.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

__all__ = [
    "LONE_SURROGATE",
    "NOT_FINITE",
    "NUL",
    "UNSIGNED_KEY",
    "content_problems",
    "describe_unstorable",
    "find_unstorable",
    "join_path",
]

NUL = "Contains a NUL character, which cannot be stored."
LONE_SURROGATE = "Contains a lone surrogate, which cannot be stored."
NOT_FINITE = "Is a number beyond the range of a double, which cannot be stored."
UNSIGNED_KEY = "__proto__ keys are not allowed: the legacy signature cannot cover them."

_SURROGATE = re.compile("[\ud800-\udfff]")
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*", re.ASCII)


def join_path(prefix: str, name: str) -> str:
    """``join_path("event", "scope") == "event.scope"``; ``[i]`` segments attach directly."""
    if not prefix or not name:
        return prefix or name
    return prefix + name if name.startswith("[") else f"{prefix}.{name}"


def _key_segment(key: str) -> str:
    # ensure_ascii escapes NUL and surrogates, so the path never inherits the problem.
    return key if _IDENTIFIER.fullmatch(key) else f"[{json.dumps(key)}]"


def _string_problem(text: str) -> str | None:
    if "\x00" in text:
        return NUL
    if _SURROGATE.search(text):
        return LONE_SURROGATE
    return None


# What the JSON text of a value holds wherever the value holds a problem: NUL is written
# \u0000, a lone surrogate as itself (ensure_ascii off), a non-finite number as NaN or
# Infinity, and the key as "__proto__". A text without any of them proves the value clean.
_SUSPECT = re.compile(r'\\u0000|[\ud800-\udfff]|NaN|Infinity|"__proto__"')


def _surely_clean(value: Any) -> bool:
    """True only when ``value`` has nothing ``content_problems`` would report: one pass of
    the C encoder over it instead of a path per node (most of an envelope's validation)."""
    try:
        text = json.dumps(value, ensure_ascii=False, check_circular=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return _SUSPECT.search(text) is None


def content_problems(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Yield (path, message) for each unstorable string or number and ``__proto__`` key.

    Iterative, so any nesting depth is safe.
    """
    if _surely_clean(value):
        return
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            problem = _string_problem(node)
            if problem:
                yield where, problem
        elif isinstance(node, float) and not math.isfinite(node):
            yield where, NOT_FINITE
        elif isinstance(node, dict):
            children = []
            for key, child in node.items():
                child_path = join_path(where, _key_segment(key))
                problem = UNSIGNED_KEY if key == "__proto__" else _string_problem(key)
                if problem:
                    yield child_path, problem
                children.append((child, child_path))
            stack.extend(reversed(children))
        elif isinstance(node, list | tuple):
            stack.extend(reversed([(c, f"{where}[{i}]") for i, c in enumerate(node)]))


def describe_unstorable(value: Any) -> tuple[str, str] | None:
    """The first key or value PostgreSQL cannot store, as (path, message)."""
    for where, problem in content_problems(value):
        if problem is not UNSIGNED_KEY:
            return where, problem
    return None


def find_unstorable(value: Any) -> str | None:
    """The path of the first key or value PostgreSQL cannot store, or None."""
    found = describe_unstorable(value)
    return found[0] if found else None
