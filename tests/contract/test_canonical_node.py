"""Property tests: canonical_json and legacy_sign agree with Node.js on generated values.

One ``node`` process serves the whole session. Values travel to it as Python JSON with
``ensure_ascii=True``, whose ``\\udxxx`` escapes JSON.parse turns back into the same lone
UTF-16 code units, so every generated string reaches JavaScript intact. Node answers with
the reference's canonical form and its HMAC, one line per request.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clawdbot.contract import canonical_json, envelope_bytes, legacy_sign, parse_json

SECRET = "property-secret-\u00e9"

# The reference's canonicalisation, verbatim in behaviour: copy into {} by assignment.
NODE_SCRIPT = r"""
const crypto = require('node:crypto');
const readline = require('node:readline');
const secret = process.argv[1];
function sortObjectKeys(obj) {
  if (Array.isArray(obj)) return obj.map(sortObjectKeys);
  if (obj !== null && typeof obj === 'object') {
    const sorted = {};
    for (const k of Object.keys(obj).sort()) sorted[k] = sortObjectKeys(obj[k]);
    return sorted;
  }
  return obj;
}
const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  try {
    const canonical = JSON.stringify(sortObjectKeys(JSON.parse(line)));
    const mac = crypto.createHmac('sha256', secret).update(canonical).digest('hex');
    process.stdout.write(mac + ' ' + canonical + '\n');
  } catch (err) {
    process.stdout.write('ERROR ' + JSON.stringify(String(err)) + '\n');
  }
});
"""

NodeCanonical = Callable[[Any], tuple[str, str]]


@pytest.fixture(scope="session")
def node() -> Iterator[NodeCanonical]:
    """Send a value to Node; get back (hmac_hex, canonical)."""
    executable = shutil.which("node")
    if executable is None:
        pytest.skip("node is not on PATH")
    proc = subprocess.Popen(
        [executable, "-e", NODE_SCRIPT, SECRET],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def ask(value: Any) -> tuple[str, str]:
        stdin.write(json.dumps(value, ensure_ascii=True).encode("ascii") + b"\n")
        stdin.flush()
        # Split on b"\n" only: the canonical text may hold a raw U+2028.
        mac, _, canonical = stdout.readline().decode("utf-8").rstrip("\n").partition(" ")
        assert mac != "ERROR", canonical
        return mac, canonical

    yield ask
    stdin.close()
    proc.wait(timeout=10)


# -- strategies ------------------------------------------------------------------------

_chars = st.one_of(
    st.sampled_from('abzAZ_-$ 09"\\/\x7f\u2028\u2029é'),
    st.characters(max_codepoint=0x1F),
    st.characters(min_codepoint=0xE000, max_codepoint=0xFFFF),
    st.characters(min_codepoint=0x10000),
    st.integers(0xD800, 0xDFFF).map(chr),  # surrogates: lone, or pairing by chance
)
_text = st.text(_chars, max_size=8)
_special_keys = st.sampled_from(
    ["__proto__", "0", "1", "9", "10", "01", "-1", "1.5", "4294967294", "4294967295"]
    + ["length", "toJSON", "constructor", "\uffff", "😀", "\ud83d", "\ude00"]
)
_keys = st.one_of(_text, _special_keys)

_thresholds = [1e21, 1e-7, 1e-6, 1e16, 1e-4, 9.999999999999999e20, 1.0000000000000001e-7]
_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),  # includes -0.0 and subnormals
    st.integers(-(2**64), 2**64).map(float),
    st.integers(2**53, 10**17).map(float),  # integral, past 2**53: Python's repr adds ".0"
    st.builds(lambda m, e: float(f"{m}e{e}"), st.integers(1, 10**17), st.integers(-340, 310)),
    st.sampled_from(_thresholds + [-x for x in _thresholds] + [5e-324, -0.0]),
).filter(math.isfinite)
_ints = st.one_of(
    st.integers(),
    st.integers(2**53 - 4, 2**70),
    st.integers(-(2**70), -(2**53) + 4),
    st.sampled_from([21, 308, 309, 400]).map(lambda e: 10**e),  # 1e+21, then doubles' edge
    st.just(-(10**400)),
)
_scalars = st.one_of(st.none(), st.booleans(), _ints, _floats, _text)


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _objects(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    # Keys equal as UTF-16 (an astral char vs its two surrogates) would collide in JS.
    pairs = st.lists(st.tuples(_keys, children), max_size=5, unique_by=lambda kv: _utf16(kv[0]))
    return pairs.map(dict)


_values = st.recursive(
    _scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), _objects(children)),
    max_leaves=24,
)

_settings = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Hypothesis describes the nested recursive strategy at length; the description is unused.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


# -- properties ------------------------------------------------------------------------


@_settings
@given(_values)
def test_canonical_json_equals_node(node: NodeCanonical, value: Any) -> None:
    assert canonical_json(value) == node(value)[1]


@_settings
@given(_values)
def test_canonical_of_parsed_body_equals_node(node: NodeCanonical, value: Any) -> None:
    body = json.dumps(value, ensure_ascii=True, indent=1).encode("ascii")
    assert canonical_json(parse_json(body)) == node(value)[1]


@_settings
@given(_values)
def test_legacy_signature_equals_node_hmac(node: NodeCanonical, value: Any) -> None:
    assert legacy_sign(SECRET, value) == node(value)[0]


@settings(_settings, max_examples=150)
@given(_objects(_values))
def test_envelope_bytes_round_trip_to_the_same_canonical_form(value: dict[str, Any]) -> None:
    assert canonical_json(parse_json(envelope_bytes(value))) == canonical_json(value)
