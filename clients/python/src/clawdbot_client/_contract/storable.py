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
from decimal import Decimal
from typing import Any

__all__ = [
    "INEXACT_INTEGER",
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
INEXACT_INTEGER = (
    "Is an integer beyond 2**53 that JavaScript rounds to another number, so the signature "
    "would not cover the value stored; send it as a string."
)
UNSIGNED_KEY = "__proto__ keys are not allowed: the legacy signature cannot cover them."

_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_SAFE = 2**53
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
# Infinity, the key as "__proto__", and an integer beyond 2**53 as 16 digits or more. A text
# without any of them proves the value clean. Each is looked for by a C-speed substring
# search (a regular expression of them all took three times as long): digit runs as runs of
# "0" once every digit is turned into one.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGIT_RUN = b"0" * 16
_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


def _surely_clean(value: Any) -> bool:
    """True only when ``value`` has nothing ``content_problems`` would report: one pass of
    the C encoder over it instead of a path per node (most of an envelope's validation)."""
    try:
        text = _encode(value)
    except (TypeError, ValueError, RecursionError):
        return False
    if "\\u0000" in text or "NaN" in text or "Infinity" in text or '"__proto__"' in text:
        return False
    if not text.isascii() and _SURROGATE.search(text):
        return False
    return _LONG_DIGIT_RUN not in text.encode().translate(_DIGITS_TO_ZERO)


def integer_exact_in_javascript(value: int) -> bool:
    """Whether JSON.parse then JSON.stringify gives ``value`` back digit for digit.

    Up to 2**53 every integer does. Beyond, JavaScript holds the nearest double and writes
    its shortest digits padded with zeros (below 1e21; from there in exponent form), so
    only integers that are exactly that padded form survive: the ones a JavaScript sender
    can write at all.
    """
    if -_MAX_SAFE <= value <= _MAX_SAFE:
        return True
    if abs(value) >= 10**21:
        return False
    return int(Decimal(repr(float(value)))) == value


def content_problems(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Yield (path, message) for each unstorable string or number, ``__proto__`` key and
    integer the signature would see rounded.

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
        elif type(node) is int and not integer_exact_in_javascript(node):
            yield where, INEXACT_INTEGER
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
        if problem is not UNSIGNED_KEY and problem is not INEXACT_INTEGER:
            return where, problem
    return None


def find_unstorable(value: Any) -> str | None:
    """The path of the first key or value PostgreSQL cannot store, or None."""
    found = describe_unstorable(value)
    return found[0] if found else None
