"""The client package stands on its own: no Django, and the server's schema unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from clawdbot_client import Client, MilestoneInvalid

ROOT = Path(__file__).resolve().parents[2]
VENDORED = ROOT / "clients/python/src/clawdbot_client/_contract"


@pytest.mark.parametrize("name", ["schema.py", "storable.py"])
def test_the_vendored_schema_is_the_servers_byte_for_byte(name):
    original = (ROOT / "clawdbot/contract" / name).read_bytes()
    assert (VENDORED / name).read_bytes() == original, "run `make vendor-contract`"


def test_importing_the_client_imports_no_django():
    code = ("import sys, clawdbot_client, clawdbot_client.aio; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'clawdbot')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd="/")
    assert out.stdout.strip() == "[]"


def test_emit_refuses_an_invalid_milestone_naming_the_fields(tmp_path):
    client = Client("http://127.0.0.1:9", "token", spool_path=tmp_path / "spool.jsonl")
    with pytest.raises(MilestoneInvalid) as caught:
        client.emit({"milestoneId": "m", "scope": "s", "claim": "c", "evidence": [],
                     "riskStatus": "fine", "nextAction": "n"})
    assert {"evidence", "riskStatus"} <= set(caught.value.errors)
    assert client.spool.pending() == 0
    client.close(timeout=0)


def test_emit_refuses_an_unusable_key(tmp_path):
    client = Client("http://127.0.0.1:9", "token", spool_path=tmp_path / "spool.jsonl")
    event = {"milestoneId": "m", "scope": "s", "claim": "c", "riskStatus": "on-track",
             "nextAction": "n", "evidence": [{"type": "log", "path": "p", "summary": "s"}]}
    with pytest.raises(MilestoneInvalid) as caught:
        client.emit(event, "not\nprintable")
    assert list(caught.value.errors) == ["idempotency_key"]
    client.close(timeout=0)


def test_the_flush_command_needs_a_token_from_the_environment(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CLAWDBOT_TOKEN"}
    out = subprocess.run([sys.executable, "-m", "clawdbot_client", "flush", "--url",
                          "http://127.0.0.1:9", "--spool", str(tmp_path / "s.jsonl")],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "CLAWDBOT_TOKEN" in out.stderr


def test_the_flush_command_reports_what_is_left_when_the_server_is_down(tmp_path):
    spool = tmp_path / "s.jsonl"
    client = Client("http://127.0.0.1:9", "token", spool_path=spool)
    client.emit({"milestoneId": "m", "scope": "s", "claim": "c", "riskStatus": "on-track",
                 "nextAction": "n", "evidence": [{"type": "log", "path": "p", "summary": "s"}]})
    client.close(timeout=0)
    out = subprocess.run([sys.executable, "-m", "clawdbot_client", "flush", "--url",
                          "http://127.0.0.1:9", "--spool", str(spool), "--timeout", "0.5"],
                         capture_output=True, text=True, env={**os.environ, "CLAWDBOT_TOKEN": "t"})
    assert (out.returncode, out.stdout.strip()) == (1, "1")
