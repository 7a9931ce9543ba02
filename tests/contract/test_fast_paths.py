"""The validation's fast paths give exactly what the general paths give.

``parse_timestamp`` reads the common ``…T…Z`` form with the C parser and everything else
(lowercase ``t``/``z``, offsets, more than six fraction digits) with its own code;
``storable._surely_clean`` clears a value by searching its JSON text, and must never clear
one that ``content_problems`` would report.
"""

from __future__ import annotations

import pytest

from clawdbot.contract import parse_timestamp
from clawdbot.contract.storable import _surely_clean, content_problems
from tests.factories import EnvelopeFactory

FRACTIONS = ["", ".1", ".12", ".123", ".1234", ".12345", ".123456", ".1234567", ".123456789"]


@pytest.mark.parametrize("fraction", FRACTIONS)
@pytest.mark.parametrize("moment", ["2026-02-28T12:34:56", "0001-01-01T00:00:00",
                                    "9999-12-31T23:59:59", "2024-02-29T23:59:59"])
def test_the_common_form_reads_as_the_general_path_reads_it(moment, fraction):
    fast = parse_timestamp(f"{moment}{fraction}Z")
    general = parse_timestamp(f"{moment.replace('T', 't')}{fraction}z")  # never the C parser
    assert fast == general and fast.utcoffset() == general.utcoffset()
    assert fast.tzinfo is general.tzinfo


@pytest.mark.parametrize("text", ["2026-02-30T00:00:00Z", "2026-13-01T00:00:00.000Z",
                                  "2026-01-01T24:00:00Z", "2026-01-01T00:00:61Z"])
def test_an_invalid_date_in_the_common_form_names_the_problem(text):
    with pytest.raises(ValueError, match="real date and time"):
        parse_timestamp(text)


CLEAN = [EnvelopeFactory(), {"a": "x" * 15 + "1" * 15}, {"n": 2**40}, {"s": "é 日本 🎉"},
         {"k": "__proto"}, {"f": 1.5e300}]
UNCLEAN = [{"s": "a\x00b"}, {"s": "\ud800"}, {"f": float("inf")}, {"f": float("nan")},
           {"__proto__": 1}, {"n": 2**53 + 1}, {"n": -(10**17 + 1)}, [[{"deep": "\udfff"}]]]
# Clean, but their text looks suspect: the slow path decides, and finds nothing.
SUSPECT_LOOKING = [{"s": "1234567890123456"}, {"s": "NaN"}, {"s": "Infinity"},
                   {"s": "__proto__"}, {"s": "\\u0000"}]


@pytest.mark.parametrize("value", CLEAN)
def test_clean_values_are_cleared_without_the_walk(value):
    assert _surely_clean(value)
    assert list(content_problems(value)) == []


@pytest.mark.parametrize("value", UNCLEAN)
def test_a_value_with_a_problem_is_never_cleared(value):
    assert not _surely_clean(value)
    assert list(content_problems(value)) != []


@pytest.mark.parametrize("value", SUSPECT_LOOKING)
def test_suspect_looking_text_takes_the_walk_which_finds_nothing(value):
    assert not _surely_clean(value)
    assert list(content_problems(value)) == []
