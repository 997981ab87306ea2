"""The compose milvus profile: Milvus with etcd and MinIO, and a retriever that can point at it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def test_milvus_and_its_stores_start_only_in_the_profile_with_healthchecks() -> None:
    services = _services()
    for name in ("milvus", "milvus_etcd", "milvus_minio"):
        assert services[name]["profiles"] == ["milvus"], name
        assert services[name]["healthcheck"]["test"], name
    depends = services["milvus"]["depends_on"]
    assert {d["condition"] for d in depends.values()} == {"service_healthy"}
    assert services["milvus"]["environment"]["ETCD_ENDPOINTS"].startswith("milvus_etcd:")
    assert services["milvus"]["environment"]["MINIO_ADDRESS"].startswith("milvus_minio:")


def test_the_retriever_takes_its_backend_from_the_environment_defaulting_to_local() -> None:
    env = _services()["retriever"]["environment"]
    assert env["ZHIKU_RETRIEVAL__BACKEND"] == "${ZHIKU_RETRIEVAL__BACKEND:-local}"
    assert env["ZHIKU_RETRIEVAL__MILVUS_URI"].endswith(":-http://milvus:19530}")
    # Every replica is reached under the one service name: no fixed name, no host port.
    retriever = _services()["retriever"]
    assert "container_name" not in retriever and "ports" not in retriever
