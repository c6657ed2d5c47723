"""The production topology files in deploy/: the compose file parses and wires the topology
docs/scale-out.md describes, every variable they set is one the platform reads and accepts,
the commands they run exist, and the systemd units pass `systemd-analyze verify`.

Docker does not run where the suite runs, so the compose file is checked as data."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from chainconsult.cli import cli
from chainconsult.config import ConfigError, Settings, load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SYSTEMD = DEPLOY / "systemd"
INSTALL_PREFIX = "/opt/chainconsult/venv/bin/chainconsult"
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")
TEST_VALUES = {"SECRET_KEY": "k" * 48, "POSTGRES_PASSWORD": "compose-password"}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def interpolate(value: str) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} with the values an operator puts
    in deploy/.env (the two secrets) and the defaults for everything else."""

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in TEST_VALUES:
            return TEST_VALUES[name]
        assert "?" not in match.group(0), f"{name} is required but has no test value"
        return default or ""

    return _INTERPOLATION.sub(one, value)


def known_variables() -> set[str]:
    """Every environment name the settings read."""
    names: set[str] = set()
    for group in Settings.model_fields.values():
        model = group.annotation
        assert isinstance(model, type)
        assert issubclass(model, BaseModel)
        for field in model.model_fields.values():
            if isinstance(field.validation_alias, str):
                names.add(field.validation_alias)
    return names


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    for name in known_variables():
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # A path of this machine instead of the container's.
    monkeypatch.setenv("CHAINCONSULT_DATA_DIR", str(tmp_path / "var"))
    return load_settings()


def cli_commands() -> set[str]:
    return {command.name or command.callback.__name__ for command in cli.registered_commands}  # type: ignore[union-attr]


def test_compose_file_runs_a_balancer_api_nodes_workers_and_shared_stores() -> None:
    services = compose()["services"]

    assert {"lb", "api", "worker", "migrate", "postgres", "redis"} <= set(services)
    assert services["api"]["deploy"]["replicas"] >= 2
    assert services["worker"]["deploy"]["replicas"] >= 2
    commands = {name: services[name]["command"] for name in ("api", "worker", "migrate")}
    assert commands["api"][:2] == ["chainconsult", "serve"]
    assert commands["worker"][:2] == ["chainconsult", "worker"]
    assert commands["migrate"] == ["chainconsult", "migrate"]
    assert {command[1] for command in commands.values()} <= cli_commands()
    # Nothing starts on an unmigrated schema; the balancer asks readiness, liveness is local.
    for name in ("api", "worker"):
        migrate = services[name]["depends_on"]["migrate"]
        assert migrate["condition"] == "service_completed_successfully"
    assert "/livez" in " ".join(services["api"]["healthcheck"]["test"])
    assert services["api"]["stop_grace_period"] == "40s"


def test_compose_references_resolve() -> None:
    document = compose()
    services = document["services"]
    networks = set(document["networks"])
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        attached = service.get("networks", [])
        assert set(attached) <= networks, f"{name} joins an undeclared network"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (DEPLOY / source).is_file(), f"{name} mounts missing {source}"
            else:
                assert source in document["volumes"]
    assert (DEPLOY / services["api"]["build"]["dockerfile"].removeprefix("deploy/")).is_file()


def test_compose_environment_is_read_and_accepted_by_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    services = compose()["services"]
    env = {name: interpolate(str(value)) for name, value in services["api"]["environment"].items()}

    assert set(env) <= known_variables()
    settings = settings_from(env, monkeypatch, tmp_path)
    assert settings.app.is_production
    assert settings.database.sqlalchemy_url().endswith("@postgres:5432/chainconsult")
    assert settings.redis.url is not None
    assert settings.redis.url.get_secret_value() == "redis://redis:6379/0"
    # The balancer's address (fixed in the compose file) is the one trusted proxy.
    lb = services["lb"]["networks"]["edge"]["ipv4_address"]
    assert [str(net) for net in settings.security.trusted_proxies] == [f"{lb}/32"]
    prometheus = services["prometheus"]["networks"]["internal"]["ipv4_address"]
    assert [str(net) for net in settings.security.trusted_ips] == [f"{prometheus}/32"]


def test_compose_refuses_to_start_without_the_secrets() -> None:
    text = (DEPLOY / "compose.yaml").read_text()

    assert "${SECRET_KEY:?" in text
    assert "${POSTGRES_PASSWORD:?" in text
    assert not re.search(r"SECRET_KEY=\S", (DEPLOY / ".env.example").read_text())


def test_balancer_takes_nodes_out_on_readiness_and_never_replays_writes() -> None:
    config = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()

    assert "http-check send meth GET uri /readyz" in config
    assert "http-request disable-l7-retry if !METH_GET" in config
    assert "server-template api" in config


def test_environment_example_for_the_units_is_accepted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lines = (SYSTEMD / "chainconsult.env.example").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))

    assert set(env) <= known_variables()
    settings = settings_from(env, monkeypatch, tmp_path)
    assert settings.app.is_production


def unit_files() -> list[Path]:
    return sorted(SYSTEMD.glob("*.service"))


def test_units_run_the_commands_of_the_cli() -> None:
    for path in unit_files():
        parser = configparser.ConfigParser(interpolation=None, strict=True)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(path)
        command = parser["Service"]["ExecStart"].split()
        assert command[0] == INSTALL_PREFIX, path.name
        assert command[1] in cli_commands(), path.name


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    binary = Path(sys.executable).parent / "chainconsult"
    assert binary.exists()
    for path in unit_files():
        # verify insists that ExecStart exists: point it at this checkout's executable.
        text = path.read_text().replace(INSTALL_PREFIX, str(binary))
        (tmp_path / path.name).write_text(text)
    # A template unit is verified through an instance of it.
    template = tmp_path / "chainconsult-worker@.service"
    shutil.copy(template, tmp_path / "chainconsult-worker@1.service")
    units = [p for p in sorted(tmp_path.glob("*.service")) if not p.name.endswith("@.service")]
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        # Without systemd (containers): the files still have to be well-formed INI whose
        # sections are systemd's.
        for unit in units:
            parser = configparser.ConfigParser(interpolation=None, strict=True)
            parser.read(unit)
            assert set(parser.sections()) <= {"Unit", "Service", "Install"}
        return
    result = subprocess.run(
        [analyze, "verify", *map(str, units)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_settings_reject_what_a_broken_compose_edit_would_pass(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {
        name: interpolate(str(value))
        for name, value in compose()["services"]["api"]["environment"].items()
    }
    env["DATABASE_MAX_CONNECTIONS"] = "ten"

    with pytest.raises(ConfigError, match="DATABASE_MAX_CONNECTIONS"):
        settings_from(env, monkeypatch, tmp_path)
