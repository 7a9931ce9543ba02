"""``manage.py check --deploy`` is clean under the production settings of docs/OPERATIONS.md."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def documented_production_env() -> dict[str, str]:
    """The block between the production-env markers, each ``…`` a fresh random value."""
    text = (BASE_DIR / "docs" / "OPERATIONS.md").read_text()
    block = re.search(r"<!-- production-env -->\n```sh\n(.*?)```\n<!-- /production-env -->",
                      text, re.S)
    assert block, "docs/OPERATIONS.md lost its production-env block"
    env = {}
    for line in block.group(1).splitlines():
        name, _, value = line.partition("=")
        env[name] = value.replace("…", secrets.token_urlsafe(50))
    return env


def _check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR, env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True, text=True, timeout=120,
    )


def test_check_deploy_reports_nothing_with_the_documented_production_settings():
    result = _check_deploy(documented_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_without_https_check_deploy_names_what_is_missing():
    env = documented_production_env()
    del env["CLAWDBOT_HTTPS"]
    result = _check_deploy(env)
    assert result.returncode != 0
    for check_id in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check_id in result.stderr + result.stdout


def test_check_deploy_warns_while_private_target_addresses_are_allowed():
    env = documented_production_env()
    del env["CLAWDBOT_OUTBOUND_ALLOW_PRIVATE"]  # the demo's default: allowed
    result = _check_deploy(env)
    assert result.returncode != 0
    assert "clawdbot.W002" in result.stderr + result.stdout
    assert "CLAWDBOT_OUTBOUND_ALLOW_PRIVATE" in result.stderr + result.stdout
