"""canonical_json and parse_json: fixed cases whose expected text came from Node.js."""

from __future__ import annotations

import json

import pytest

from clawdbot.contract import MAX_DEPTH, JsonInvalid, canonical_json, js_number, parse_json


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("1e21", "1e+21"),
        ("999999999999999999999", "1e+21"),
        ("1e20", "100000000000000000000"),
        ("123456789012345680000", "123456789012345680000"),
        ("1e-7", "1e-7"),
        ("0.0000001234", "1.234e-7"),
        ("0.000001", "0.000001"),
        ("-1e-6", "-0.000001"),
        ("1.2345e-5", "0.000012345"),
        ("123e-20", "1.23e-18"),
        ("5e-324", "5e-324"),
        ("4.9406564584124654e-324", "5e-324"),
        ("2.2250738585072014e-308", "2.2250738585072014e-308"),
        ("1.7976931348623157e308", "1.7976931348623157e+308"),
        ("1.5e300", "1.5e+300"),
        ("1e400", "null"),
        ("-0.0", "0"),
        ("-0", "0"),
        ("100.0", "100"),
        ("1e16", "10000000000000000"),
        ("0.30000000000000004", "0.30000000000000004"),
        ("-123456789.125", "-123456789.125"),
        ("9007199254740992.0", "9007199254740992"),
        ("9007199254740993", "9007199254740992"),
        ("9007199254740994.0", "9007199254740994"),
        ("9999999999999998.0", "9999999999999998"),
        ("-9007199254740993", "-9007199254740992"),
        ("1152921504606846976", "1152921504606847000"),
        ("12345678901234567890", "12345678901234567000"),
        ("1000000000000000000000", "1e+21"),
    ],
)
def test_numbers_render_as_javascript_does_after_json_parse(literal: str, expected: str) -> None:
    assert canonical_json(parse_json(literal)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2**53 + 1, "9007199254740992"),
        (10**21, "1e+21"),
        (10**400, "null"),
        (-(10**400), "null"),
        (float("nan"), "null"),
        (float("inf"), "null"),
        (float("-inf"), "null"),
        (-0.0, "0"),
        (1.0, "1"),
        (9007199254740994.0, "9007199254740994"),
        (-9007199254740994.0, "-9007199254740994"),
        (0.5, "0.5"),
    ],
)
def test_python_numbers_render_as_their_javascript_double(value: float, expected: str) -> None:
    assert js_number(value) == expected
    assert canonical_json(value) == expected


def test_an_integer_too_long_for_python_int_parses_as_javascript_infinity() -> None:
    assert canonical_json(parse_json("[" + "9" * 5000 + "]")) == "[null]"


def test_booleans_are_not_numbers() -> None:
    assert canonical_json([True, False, None, 1]) == "[true,false,null,1]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"\\', '"\\"\\\\"'),
        ("\b\f\n\r\t", '"\\b\\f\\n\\r\\t"'),
        ("\x00\x01\x1f", '"\\u0000\\u0001\\u001f"'),
        ("\x7f \u2028 \u2029 / é 😀", '"\x7f \u2028 \u2029 / é 😀"'),
        ("<script>&", '"<script>&"'),
        ("\ud800", '"\\ud800"'),
        ("a\udfffb", '"a\\udfffb"'),
        ("\ude00\ud83d", '"\\ude00\\ud83d"'),  # low then high: two lone surrogates
        ("\ud83d\ude00", '"😀"'),  # a pair held as two code points is one character
        ("\ud83d\ud83d\ude00", '"\\ud83d😀"'),
    ],
)
def test_strings_are_escaped_as_ecmascript_json_stringify(text: str, expected: str) -> None:
    assert canonical_json(text) == expected


def test_output_with_lone_surrogates_still_encodes_to_utf8() -> None:
    canonical_json({"\udc00": "\ud800"}).encode("utf-8")


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    value = {"\uffff": 1, "😀": 2, "\ue000": 3, "z": 4}
    assert canonical_json(value) == '{"z":4,"😀":2,"\ue000":3,"\uffff":1}'


def test_keys_sort_recursively_in_objects_inside_arrays() -> None:
    value = {"b": [{"d": 1, "c": 2}], "a": {"f": None, "e": []}}
    assert canonical_json(value) == '{"a":{"e":[],"f":null},"b":[{"c":2,"d":1}]}'


def test_array_index_keys_come_first_in_numeric_order_as_in_a_javascript_object() -> None:
    value = {"b": 1, "a": 2, "10": 3, "9": 4, "01": 5, "4294967294": 6, "4294967295": 7, "-1": 8}
    assert canonical_json(value) == (
        '{"9":4,"10":3,"4294967294":6,"-1":8,"01":5,"4294967295":7,"a":2,"b":1}'
    )


def test_proto_keys_vanish_as_the_reference_sorted_copy_drops_them() -> None:
    assert canonical_json({"z": 1, "__proto__": {"x": 1}, "a": 2}) == '{"a":2,"z":1}'
    assert canonical_json([{"__proto__": None}]) == "[{}]"


def test_top_level_scalars_are_allowed() -> None:
    assert [canonical_json(v) for v in ("x", 3, None)] == ['"x"', "3", "null"]


def test_non_json_values_are_refused() -> None:
    with pytest.raises(TypeError):
        canonical_json({"when": object()})
    with pytest.raises(TypeError):
        canonical_json({1: "non-string key"})


def test_canonical_matches_plain_json_dumps_on_simple_content() -> None:
    value = {"b": [1, 2.5, "x"], "a": {"c": True}}
    plain = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == plain


# -- parse_json ---------------------------------------------------------------------------


def test_parse_json_accepts_bytes_and_str_alike() -> None:
    assert parse_json(b'{"a": [1, 2.0]}') == parse_json('{"a": [1, 2.0]}') == {"a": [1, 2.0]}


def test_parse_json_keeps_the_last_of_duplicate_keys_as_javascript_does() -> None:
    assert parse_json(b'{"a": 1, "a": 2}') == {"a": 2}


def test_parse_json_decodes_escaped_surrogates_as_javascript_does() -> None:
    assert parse_json(rb'["\ud83d\ude00", "\ud800"]') == ["😀", "\ud800"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff{}", "not valid UTF-8"),
        (b'"\xed\xa0\x80"', "not valid UTF-8"),  # a surrogate encoded in UTF-8
        (b"\xef\xbb\xbf{}", "invalid JSON"),  # JSON.parse refuses a BOM too
        (b"", "invalid JSON"),
        (b"{} x", "invalid JSON"),
        (b"{'a': 1}", "invalid JSON"),
        (b"[NaN]", "NaN is not a JSON value"),
        (b"[-Infinity]", "-Infinity is not a JSON value"),
        (b'"\x01"', "invalid JSON"),  # raw control characters are not allowed in strings
        (b"[1,]", "invalid JSON"),
    ],
)
def test_parse_json_refuses_what_json_parse_refuses(raw: bytes, reason: str) -> None:
    with pytest.raises(JsonInvalid, match=reason):
        parse_json(raw)


def test_json_invalid_is_a_value_error() -> None:
    assert issubclass(JsonInvalid, ValueError)


def test_nesting_up_to_max_depth_is_accepted() -> None:
    value = parse_json("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert canonical_json(value) == "[" * MAX_DEPTH + "]" * MAX_DEPTH


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_deeper_nesting_is_refused_cleanly(depth: int) -> None:
    with pytest.raises(JsonInvalid, match="nested deeper"):
        parse_json("[" * depth + "]" * depth)


def test_canonical_json_refuses_over_deep_python_values() -> None:
    value: list[object] = []
    for _ in range(MAX_DEPTH):
        value = [value]
    with pytest.raises(JsonInvalid, match="nested deeper"):
        canonical_json(value)


def test_key_orders_are_remembered_per_key_set_and_insertion_order():
    """The key-order cache: the same keys given in another insertion order, or an object
    whose keys equal a remembered set but are not all strings, are ordered (or refused)
    on their own."""
    first = {"b": 1, "10": 2, "a": 3, "2": 4}
    again = {"a": 5, "2": 6, "b": 7, "10": 8}
    for _ in range(2):
        assert canonical_json(first) == '{"2":4,"10":2,"a":3,"b":1}'
        assert canonical_json(again) == '{"2":6,"10":8,"a":5,"b":7}'
    with pytest.raises(TypeError, match="keys must be strings"):
        canonical_json({2: 1, "10": 2, "a": 3, "b": 4})


def test_the_key_order_cache_stays_bounded_under_many_key_sets():
    from clawdbot.contract import canonical

    for i in range(canonical._KEY_ORDERS_MAX + 10):
        assert canonical_json({f"k{i}": i, "a": 0}) == f'{{"a":0,"k{i}":{i}}}'
    assert len(canonical._KEY_ORDERS) <= canonical._KEY_ORDERS_MAX
    wide = {f"k{i:03}": i for i in range(canonical._KEY_ORDER_CACHED_KEYS + 1)}
    canonical_json(wide)
    assert tuple(wide) not in canonical._KEY_ORDERS
