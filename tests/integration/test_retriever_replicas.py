"""One retriever per local index directory; as many as wanted on Milvus."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retriever.backend import create_chunk_index
from retriever.index_owner import LOCK_FILE
from services.common.chunks import ChunkIn
from services.common.errors import IndexInUseError
from services.common.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# What uvicorn does with --factory, without serving: build the retriever app.
START = "from retriever.app import create_app; create_app(); print('started')"


def _settings(tmp_path: Path, backend: str) -> Settings:
    retrieval = {"backend": backend, "milvus_uri": str(tmp_path / "milvus.db")}
    return Settings.model_validate({"data_dir": str(tmp_path / "data"), "retrieval": retrieval})


def _start_retriever(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ZHIKU_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
    env.pop("ZHIKU_RETRIEVAL__BACKEND", None)
    command = [sys.executable, "-c", START]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_a_second_local_retriever_in_the_same_process_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "local")
    first = create_chunk_index(settings)
    with pytest.raises(IndexInUseError, match=f"pid {os.getpid()}") as refused:
        create_chunk_index(settings)
    assert refused.value.error_type == "conflict"
    assert "ZHIKU_RETRIEVAL__BACKEND=milvus" in refused.value.message
    first.close()
    create_chunk_index(settings).close()  # closed: the directory is free again


def test_a_second_retriever_process_on_a_local_index_refuses_to_start(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "local")
    held = create_chunk_index(settings)
    try:
        refused = _start_retriever(settings.data_dir)
    finally:
        held.close()
    assert refused.returncode != 0
    assert "IndexInUseError" in refused.stderr
    assert f"is in use by another retriever process (pid {os.getpid()})" in refused.stderr
    assert (settings.index_dir / LOCK_FILE).exists()
    # The holder gone, the same directory starts again.
    started = _start_retriever(settings.data_dir)
    assert started.returncode == 0, started.stderr
    assert "started" in started.stdout


def test_milvus_replicas_start_side_by_side_and_share_the_chunks(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "milvus")
    first, second = create_chunk_index(settings), create_chunk_index(settings)
    try:
        vector = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
        chunk = ChunkIn(chunk_id=1, document_id=1, text="长城", vector=vector)
        assert first.upsert(1, "test-model", 4, [chunk]) == 1
        assert second.ids(1) == [1]
        assert not (settings.index_dir / LOCK_FILE).exists()
    finally:
        first.close()
        second.close()
