"""Timestamps whose UTC instant falls outside years 1…9999 are field errors, not crashes.

``9999-12-31T23:59:59-01:00`` is a valid RFC 3339 string whose instant is in year 10000
UTC, which neither Python's datetime nor the stored projection can hold; converting it
raised OverflowError, a 500 at the ingest and the emit API.
"""

from __future__ import annotations

import pytest

from clawdbot.contract import MilestoneInvalid, parse_timestamp, validate_envelope
from tests.factories import EnvelopeFactory, MilestoneEventFactory


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-01:00", "9999-12-31T23:30:00.000-14:00",
                                  "0001-01-01T00:00:00+01:00", "0001-01-01T00:59:59.999+01:00"])
def test_an_instant_outside_years_1_to_9999_is_a_value_error(text):
    with pytest.raises(ValueError, match="year"):
        parse_timestamp(text)


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59+01:00",
                                  "0001-01-01T00:00:00Z", "0001-01-01T00:00:00-01:00"])
def test_the_edges_of_the_range_are_accepted(text):
    assert 1 <= parse_timestamp(text).year <= 9999


@pytest.mark.parametrize("field", ["event.timestampUtc", "sentAtUtc"])
def test_the_envelope_names_the_field(field):
    late = "9999-12-31T23:59:59-01:00"
    envelope = (EnvelopeFactory(event=MilestoneEventFactory(timestampUtc=late))
                if field.startswith("event") else EnvelopeFactory(sentAtUtc=late))
    with pytest.raises(MilestoneInvalid) as caught:
        validate_envelope(envelope)
    assert list(caught.value.errors) == [field]
