"""Canonical JSON: the exact text the legacy signature covers.

The reference TypeScript sender and receiver compute::

    JSON.stringify(sortObjectKeys(JSON.parse(body)))

where ``sortObjectKeys`` copies every object into a fresh ``{}`` by assignment, in
``Object.keys(o).sort()`` order. ``canonical_json`` reproduces that text character for
character, including two consequences of building plain JavaScript objects that are easy
to miss:

* an object lists its *array-index* keys ("0", "7", "4294967294", but not "01", "-1" or
  "4294967295") first, in ascending numeric order, whatever order they were inserted in;
* ``sorted["__proto__"] = v`` hits the ``Object.prototype.__proto__`` setter instead of
  creating a property, so ``__proto__`` keys vanish from the canonical form.

``parse_json`` is the matching reader: it accepts what ``JSON.parse`` accepts (minus
absurd nesting) and yields values whose canonical form is what JavaScript would produce.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["MAX_DEPTH", "JsonInvalid", "canonical_json", "js_number", "parse_json"]

#: Containers nested deeper than this are refused. JSON.parse goes deeper, but the
#: encoders here recurse, and an envelope has no business being more than a few levels deep.
MAX_DEPTH = 200

# Integers of at most this magnitude are exact doubles, so their decimal form is JS's too.
_MAX_SAFE = 2**53
# "4294967295" (2**32 - 1) is not an array index; JS treats it as an ordinary key.
_ARRAY_INDEX_END = 2**32 - 1
_PROTO = "__proto__"
# Python's repr(float) uses plain decimal notation in this range, as JS does, with the
# same shortest digits; outside it Python switches to exponent form earlier than JS.
_REPR_LOW, _REPR_HIGH = 1e-4, 1e16

_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
# A high+low surrogate pair held as two code points is one character to JavaScript; any
# other surrogate code point is a lone UTF-16 code unit, which JSON.stringify escapes.
_NEEDS_ESCAPE = re.compile('[\ud800-\udbff][\udc00-\udfff]|[\x00-\x1f"\\\\\ud800-\udfff]')
_SURROGATE = re.compile("[\ud800-\udfff]")

# Same escapes as JSON.stringify for everything but surrogates (checked separately).
_dumps = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
).encode
# Longer digit strings exceed every double; see _parse_int.
_LONGEST_INT_DIGITS = 400


class JsonInvalid(ValueError):
    """The input is not JSON the pipeline accepts; ``str(exc)`` says why."""


class _NeedsSlowPath(Exception):
    """A value json.dumps would render differently from JavaScript."""


# -- numbers ---------------------------------------------------------------------------


def js_number(value: int | float) -> str:
    """Render a number as JSON.stringify does after JavaScript parsed it as a double.

    Integers beyond 2**53 are rounded to the nearest double first (as JSON.parse does),
    non-finite values become ``null``, and ``-0`` becomes ``0``.
    """
    if isinstance(value, int):
        if -_MAX_SAFE <= value <= _MAX_SAFE:
            return int.__repr__(value)
        try:
            value = float(value)  # correctly rounded, like JS's string-to-double
        except OverflowError:
            return "null"  # JSON.parse gives Infinity, which stringifies as null
    if not math.isfinite(value):
        return "null"
    if value == 0.0:
        return "0"
    if value.is_integer() and -_MAX_SAFE <= value <= _MAX_SAFE:
        return int.__repr__(int(value))
    return _from_shortest_digits(float.__repr__(value))


def _from_shortest_digits(text: str) -> str:
    """Reformat Python's shortest round-trip repr by ECMAScript Number::toString rules."""
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exp = text.partition("e")
    whole, _, frac = mantissa.partition(".")
    all_digits = whole + frac
    digits = all_digits.lstrip("0")
    # value == 0.<digits> * 10**n, i.e. ECMAScript's s * 10**(n - k) with k digits.
    n = len(whole) + (int(exp) if exp else 0) - (len(all_digits) - len(digits))
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * -n + digits
    else:
        point = "." + digits[1:] if k > 1 else ""
        body = f"{digits[0]}{point}e{n - 1:+d}"
    return sign + body


# -- strings and keys ------------------------------------------------------------------


def _escape_one(match: re.Match[str]) -> str:
    text = match.group()
    if len(text) == 2:  # a surrogate pair: emit the character it encodes, raw
        return text.encode("utf-16-be", "surrogatepass").decode("utf-16-be")
    return _SHORT_ESCAPES.get(text) or f"\\u{ord(text):04x}"


def _quote(text: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(_escape_one, text) + '"'


def _utf16_units(key: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly as JS compares code units.
    return key.encode("utf-16-be", "surrogatepass")


def _is_array_index(key: str) -> bool:
    return (
        key.isdigit()
        and key.isascii()
        and (key[0] != "0" or key == "0")
        and len(key) <= 10
        and int(key) < _ARRAY_INDEX_END
    )


# Envelopes of one sender share their key sets, so the order of each set is computed once:
# a batch of 1,000 envelopes otherwise sorts the same few dozen key lists 30,000 times
# (a fifth of a batch ingest's CPU). Bounded: small objects only, and the whole cache is
# dropped when full, so hostile key sets cost memory of at most _KEY_ORDERS_MAX entries.
_KEY_ORDERS: dict[tuple[str, ...], list[str]] = {}
_KEY_ORDERS_MAX = 4096
_KEY_ORDER_CACHED_KEYS = 32


def _js_key_order(obj: dict[Any, Any]) -> list[str]:
    """Keys in the order JSON.stringify lists them for the reference's sorted copy."""
    keys = tuple(obj)
    # A hit means every key equals a str key of an earlier object: a str never equals a
    # non-str, so the keys are strings (the check below ran when the entry was made).
    ordered = _KEY_ORDERS.get(keys)
    if ordered is None:
        ordered = _sorted_keys(keys, obj)
        if len(keys) <= _KEY_ORDER_CACHED_KEYS:
            if len(_KEY_ORDERS) >= _KEY_ORDERS_MAX:
                _KEY_ORDERS.clear()
            _KEY_ORDERS[keys] = ordered
    return ordered


def _sorted_keys(given: tuple[Any, ...], obj: dict[Any, Any]) -> list[str]:
    keys = list(given)
    if not all(isinstance(key, str) for key in keys):
        raise TypeError("object keys must be strings")
    if all(key.isascii() for key in keys):
        keys.sort()  # code point order equals UTF-16 order for ASCII
    else:
        keys.sort(key=_utf16_units)
    indices = [key for key in keys if _is_array_index(key)]
    if indices:
        indices.sort(key=int)
        keys = indices + [key for key in keys if not _is_array_index(key)]
    if _PROTO in obj:
        keys.remove(_PROTO)
    return keys


# -- encoders --------------------------------------------------------------------------


def _too_deep() -> JsonInvalid:
    return JsonInvalid(f"nested deeper than {MAX_DEPTH} levels")


def _encode(value: Any, depth: int) -> str:
    """The general encoder: handles every value, including those _prepare refuses."""
    if isinstance(value, str):
        return _quote(value)
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int | float):
        return js_number(value)
    if depth >= MAX_DEPTH:
        raise _too_deep()
    if isinstance(value, dict):
        members = [_quote(k) + ":" + _encode(value[k], depth + 1) for k in _js_key_order(value)]
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join([_encode(item, depth + 1) for item in value]) + "]"
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _prepare(value: Any, depth: int) -> Any:
    """Copy ``value`` into a form json.dumps renders exactly as JavaScript would.

    Objects are rebuilt in JavaScript key order and integral floats become ints; any
    number whose Python rendering differs from JavaScript's raises _NeedsSlowPath.
    """
    if isinstance(value, str) or value is None or value is True or value is False:
        return value
    if isinstance(value, int):
        if -_MAX_SAFE <= value <= _MAX_SAFE:
            return value
        raise _NeedsSlowPath
    if isinstance(value, float):
        if value.is_integer():
            # Beyond 2**53 JS pads shortest digits with zeros; Python's repr appends ".0".
            if -_MAX_SAFE <= value <= _MAX_SAFE:
                return int(value)
            raise _NeedsSlowPath
        if _REPR_LOW <= abs(value) < _REPR_HIGH:
            return value
        raise _NeedsSlowPath
    if depth >= MAX_DEPTH:
        raise _too_deep()
    if isinstance(value, dict):
        return {key: _prepare(value[key], depth + 1) for key in _js_key_order(value)}
    if isinstance(value, list | tuple):
        return [_prepare(item, depth + 1) for item in value]
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def canonical_json(value: Any) -> str:
    """Return ``JSON.stringify(sortObjectKeys(value))`` exactly as Node.js computes it.

    ``value`` is a JSON-shaped Python value (dict with str keys, list/tuple, str, int,
    float, bool, None), normally from ``parse_json``. The result never contains a lone
    surrogate (they are escaped), so it always encodes to UTF-8.

    Raises TypeError for non-JSON values and JsonInvalid past MAX_DEPTH.
    """
    try:
        prepared = _prepare(value, 0)
    except _NeedsSlowPath:
        return _encode(value, 0)
    text = _dumps(prepared)
    # json.dumps leaves surrogates raw where JavaScript escapes lone ones.
    if not text.isascii() and _SURROGATE.search(text):
        return _encode(value, 0)
    return text


# -- parsing ---------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise JsonInvalid(f"invalid JSON: {name} is not a JSON value")


def _parse_int(digits: str) -> int | float:
    # Python refuses to convert very long digit strings (a DoS guard). Beyond 400 digits
    # the number exceeds every double, so JavaScript holds Infinity, as float() does.
    if len(digits) > _LONGEST_INT_DIGITS:
        return float(digits)
    return int(digits)


_decode = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_parse_int).decode


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether the parsed ``value`` nests deeper than ``limit``: one level at a time, over
    containers only (the decoder makes exactly dicts and lists)."""
    if type(value) is not dict and type(value) is not list:
        return False
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below = []
        for node in level:
            for child in (node.values() if type(node) is dict else node):
                if type(child) is dict or type(child) is list:
                    below.append(child)
        level = below
    return False


def parse_json(raw: bytes | bytearray | memoryview | str) -> Any:
    """Parse a request body as JSON.parse would, for canonical_json and validation.

    Bytes must be strict UTF-8 (no BOM). Duplicate keys: the last wins, as in JavaScript.
    Integers stay Python ints (canonical_json rounds them as JavaScript does); ``NaN`` and
    ``Infinity`` literals are refused, as JSON.parse refuses them.

    Raises JsonInvalid (a ValueError) with a readable reason.
    """
    if isinstance(raw, str):
        text = raw
    else:
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonInvalid(f"body is not valid UTF-8 (at byte {exc.start})") from None
    try:
        value = _decode(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise JsonInvalid(f"invalid JSON: {exc.msg} at {where}") from None
    except RecursionError:
        raise _too_deep() from None
    # Counting brackets is C-fast and bounds the depth, so most bodies skip the walk.
    if text.count("[") + text.count("{") > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        raise _too_deep()
    return value
