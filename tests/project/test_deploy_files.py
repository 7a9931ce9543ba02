"""The Procfile, docker-compose.yml and Dockerfile run the roles ``make run`` runs, with
settings the project reads (tests/project/test_scale_out.py runs the Procfile's shape)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from clawdbot.serve import ROLES, role_command, web_command
from tests.liveserver import procfile

BASE_DIR = Path(__file__).resolve().parents[2]
#: The variables settings.py (``env.str("NAME"…``) and clawdbot/serve.py read.
SETTINGS_READ = {
    name for module in ("settings.py", "serve.py")
    for name in re.findall(r'(?:env(?:\.\w+)?|environ\.get)\(\s*"([A-Z_]+)"',
                           (BASE_DIR / "clawdbot" / module).read_text())
}


def _compose() -> dict:
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


def test_the_procfile_runs_each_role_of_make_run():
    roles = procfile()
    assert set(roles) == set(ROLES)
    for role, command in roles.items():
        assert command.endswith(f"python -m clawdbot.serve {role}"), command


def test_a_role_runs_what_make_run_runs(settings):
    assert role_command("web") == web_command(settings.HOST, settings.PORT)
    assert role_command("worker")[-1] == "qcluster"
    assert role_command("release")[-2:] == ["migrate", "--no-input"]


def test_compose_has_postgres_16_redis_two_web_servers_and_two_workers():
    services = _compose()["services"]
    assert services["db"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:")
    by_role: dict[str, list[str]] = {}
    for name, service in services.items():
        command = service.get("command", [])
        if command[:3] == ["python", "-m", "clawdbot.serve"]:
            assert command[3] in ROLES, name
            assert service["build"] == ".", name
            by_role.setdefault(command[3], []).append(name)
    assert len(by_role["web"]) == 2 and len(by_role["worker"]) == 2
    assert len(by_role["release"]) == 1
    published = [services[name]["ports"][0] for name in by_role["web"]]
    assert len(set(published)) == 2, published
    for name in by_role["web"] + by_role["worker"]:
        assert services[name]["depends_on"]["release"]["condition"] == \
            "service_completed_successfully"


def test_compose_sets_only_settings_the_project_reads_and_every_secret():
    services = _compose()["services"]
    environment = services["web-1"]["environment"]
    unknown = set(environment) - SETTINGS_READ
    assert not unknown, f"docker-compose.yml sets what settings.py never reads: {unknown}"
    for required in ("DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL", "DJANGO_SECRET_KEY",
                     "MILESTONE_SIGNING_SECRET", "MILESTONE_WEBHOOK_SECRET"):
        assert required in environment, required
    # Several hosts share one deployment: no secret may fall back to a per-host default.
    for secret in ("DJANGO_SECRET_KEY", "MILESTONE_SIGNING_SECRET", "MILESTONE_WEBHOOK_SECRET"):
        assert ":?" in environment[secret], secret
    assert (BASE_DIR / "docker" / "postgres-init.sh").exists()


def test_the_image_serves_a_known_role_on_a_supported_python():
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    python = re.search(r"^FROM python:(\d+)\.(\d+)", dockerfile, re.M)
    assert python and (int(python[1]), int(python[2])) >= (3, 11)
    command = re.search(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert command and yaml.safe_load(command[1])[-1] in ROLES
