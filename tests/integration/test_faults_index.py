"""Index files survive a writer killed mid-save, and an unreadable index is moved aside."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from retriever.kb_index import KEYWORDS_DIR, META_FILE, VECTORS_FILE, KbIndex
from retriever.persist import atomic_write_json, atomic_write_with, read_json
from retriever.store import IndexStore
from services.common.chunks import ChunkIn

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

# Saves a growing index over and over until it is killed.
WRITER = """
import sys
from pathlib import Path
import numpy as np
from retriever.kb_index import KbIndex
from services.common.chunks import ChunkIn

index = KbIndex.create(Path(sys.argv[1]), "test-model", 64)
rng = np.random.default_rng(0)
n = 0
while True:
    vectors = rng.standard_normal((200, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index.upsert(
        [
            ChunkIn(chunk_id=n + i, document_id=1, text=f"chunk {n + i} 长城", vector=v)
            for i, v in enumerate(vectors)
        ]
    )
    index.save()
    n += 200
    print(n, flush=True)
"""


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "meta.json"
    atomic_write_json(target, {"version": 1})

    def half_then_crash(tmp: Path) -> None:
        tmp.write_bytes(b'{"version": 2, "trunc')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_with(target, half_then_crash)
    assert read_json(target) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["meta.json"]


def test_a_writer_killed_mid_save_never_leaves_a_torn_index(tmp_path: Path) -> None:
    for round_number in range(4):
        directory = tmp_path / str(round_number)
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(directory)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stdout is not None
        for _ in range(2 + round_number):  # let it finish a few saves, then kill it mid-way
            assert proc.stdout.readline()
        time.sleep(0.01 * round_number)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        index = KbIndex.load(directory)
        assert index is not None
        assert index.count >= 400
        assert index.vectors.ids() == index.keywords.ids() == set(index.documents)
        # The retriever clears what the killed writer left behind when it loads the index.
        assert IndexStore(tmp_path).stats(round_number).count == index.count
        assert not list(directory.glob(".*.tmp"))


def test_a_corrupt_or_missing_index_file_is_moved_aside_and_served_empty(tmp_path: Path) -> None:
    for number, (name, damage) in enumerate(
        [(VECTORS_FILE, b"not faiss"), (KEYWORDS_DIR, None), (META_FILE, b"{")], start=1
    ):
        directory = tmp_path / str(number)
        index = KbIndex.create(directory, "test-model", 4)
        index.save()
        if damage is None:
            shutil.rmtree(directory / name)
        else:
            (directory / name).write_bytes(damage)
        store = IndexStore(tmp_path)
        assert store.ids(number) == []
        assert store.stats(number).count == 0
        assert not directory.exists()
        assert len(list(tmp_path.glob(f"{number}.corrupt-*"))) == 1
        # The empty index takes new chunks, as the reconciliation's rebuild needs.
        vector = np.ones(4, dtype=np.float32) / 2
        rebuilt = ChunkIn(chunk_id=9, document_id=1, text="重建", vector=vector)
        assert store.upsert(number, "test-model", 4, [rebuilt]) == 1
        assert store.ids(number) == [9]
