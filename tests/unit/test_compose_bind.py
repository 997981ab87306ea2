"""The compose gateway is told the address it binds, so its no-key network check can fire."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from services.common.api_keys import exposure_problem

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _gateway_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE.read_text())["services"]
    return {
        name: svc
        for name, svc in services.items()
        if "services.gateway.app:create_app" in (svc.get("command") or [])
    }


def test_every_compose_gateway_knows_the_address_it_binds() -> None:
    gateways = _gateway_services()
    assert gateways, "no gateway service in docker-compose.yml"
    for name, svc in gateways.items():
        command = svc["command"]
        bound = command[command.index("--host") + 1]
        told = svc["environment"].get("ZHIKU_GATEWAY_HOST", "127.0.0.1")  # the setting's default
        assert told == bound, f"{name} binds {bound} but believes it binds {told}"


def test_the_compose_gateway_refuses_to_start_without_keys() -> None:
    for svc in _gateway_services().values():
        host = svc["environment"]["ZHIKU_GATEWAY_HOST"]
        assert exposure_problem(host, key_count=0) is not None
        assert exposure_problem(host, key_count=1) is None
