"""The change journal: records replayed on load, a torn tail dropped, snapshots when it grows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from retriever import kb_index
from retriever.journal import FRAME, Journal, Removed, Upserted, decode, encode
from retriever.kb_index import META_FILE, VECTORS_FILE, KbIndex
from retriever.persist import read_json
from retriever.store import IndexStore
from services.common.chunks import ChunkIn
from services.common.settings import RetrievalSettings

DIM = 8
MODEL = "test-model"


def record(chunk_id: int, text: str = "长城 军事") -> ChunkIn:
    vector = np.random.default_rng(chunk_id).standard_normal(DIM).astype(np.float32)
    return ChunkIn(
        chunk_id=chunk_id,
        document_id=chunk_id // 10,
        text=f"{text} {chunk_id}",
        vector=vector / np.linalg.norm(vector),
    )


def journal_of(directory: Path) -> Path:
    return directory / str(read_json(directory / META_FILE)["journal"])


def assert_same(a: KbIndex, b: KbIndex) -> None:
    assert a.documents == b.documents
    assert a.vectors.ids() == b.vectors.ids() == a.keywords.ids() == b.keywords.ids()
    ids_a, vectors_a = a.vectors.contents()
    ids_b, vectors_b = b.vectors.contents()
    np.testing.assert_array_equal(vectors_a[np.argsort(ids_a)], vectors_b[np.argsort(ids_b)])
    assert a.keywords.search("长城", 50) == b.keywords.search("长城", 50)


def test_records_round_trip() -> None:
    vectors: NDArray[np.float32] = np.arange(2 * DIM, dtype=np.float32).reshape(2, DIM)
    entry = Upserted(np.array([3, 2**40]), np.array([1, 2]), vectors)
    frame = encode(entry)
    decoded = decode(frame[FRAME.size :])
    assert isinstance(decoded, Upserted)
    assert decoded.chunk_ids.tolist() == [3, 2**40] and decoded.document_ids.tolist() == [1, 2]
    np.testing.assert_array_equal(decoded.vectors, vectors)
    removed = decode(encode(Removed(np.array([5, 6])))[FRAME.size :])
    assert isinstance(removed, Removed) and removed.chunk_ids.tolist() == [5, 6]


def test_changes_after_the_first_batch_go_to_the_journal_only(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    store.upsert(1, MODEL, DIM, [record(i) for i in range(5)])
    snapshot = (tmp_path / "1" / VECTORS_FILE).read_bytes()
    store.upsert(1, MODEL, DIM, [record(i, "熊猫") for i in range(3, 8)])
    assert store.remove(1, [0, 7, 99]) == (2, 6)
    assert (tmp_path / "1" / VECTORS_FILE).read_bytes() == snapshot
    assert journal_of(tmp_path / "1").stat().st_size > 0
    reopened = IndexStore(tmp_path)
    with reopened.read(1) as kb, store.read(1) as live:
        assert kb is not None and live is not None
        assert kb.documents == {i: i // 10 for i in range(1, 7)}
        assert_same(kb, live)
        assert kb.keywords.search("熊猫", 10)[0][0] in {3, 4, 5, 6}


def test_a_torn_last_record_is_dropped_and_the_journal_keeps_working(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    store.upsert(1, MODEL, DIM, [record(1)])
    store.upsert(1, MODEL, DIM, [record(2)])
    journal = journal_of(tmp_path / "1")
    whole = journal.stat().st_size
    store.upsert(1, MODEL, DIM, [record(3)])
    # A crash mid-append: only part of the third record reached the disk.
    with journal.open("r+b") as fh:
        fh.truncate(whole + (journal.stat().st_size - whole) // 2)
    reopened = IndexStore(tmp_path)
    assert reopened.ids(1) == [1, 2]
    assert journal.stat().st_size == whole  # cut back, so the next record is readable
    reopened.upsert(1, MODEL, DIM, [record(4)])
    assert IndexStore(tmp_path).ids(1) == [1, 2, 4]


@pytest.mark.parametrize("damage", ["crc", "header", "length"])
def test_a_damaged_last_record_is_dropped(tmp_path: Path, damage: str) -> None:
    store = IndexStore(tmp_path)
    store.upsert(1, MODEL, DIM, [record(1)])
    store.upsert(1, MODEL, DIM, [record(2)])
    journal = journal_of(tmp_path / "1")
    data = journal.read_bytes()
    if damage == "crc":
        data = data[:-3] + bytes([data[-3] ^ 0xFF]) + data[-2:]
    elif damage == "header":
        data += b"\x07\x00"
    else:
        data += FRAME.pack(1 << 31, 0) + b"U"
    journal.write_bytes(data)
    assert IndexStore(tmp_path).ids(1) == ([1] if damage == "crc" else [1, 2])


def test_the_journal_is_folded_into_a_snapshot_once_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kb_index, "MIN_COMPACT_BYTES", 0)
    store = IndexStore(tmp_path, RetrievalSettings(journal_compact_fraction=0.5))
    store.upsert(1, MODEL, DIM, [record(i) for i in range(40)])
    first = journal_of(tmp_path / "1")
    snapshot_bytes = sum((tmp_path / "1" / n).stat().st_size for n in ("vectors.faiss", META_FILE))
    grown = 0
    for i in range(40, 200):
        store.upsert(1, MODEL, DIM, [record(i)])
        if journal_of(tmp_path / "1") != first:
            grown = i
            break
    assert grown, "no snapshot was written"
    assert not first.exists()  # the old journal went with its snapshot
    assert [p.name for p in (tmp_path / "1").glob("journal-*")] == []
    with store.read(1) as kb:
        assert kb is not None
        assert kb.snapshot_bytes > snapshot_bytes
    assert IndexStore(tmp_path).ids(1) == list(range(grown + 1))


def test_a_journal_left_by_a_crash_after_the_snapshot_is_not_replayed(tmp_path: Path) -> None:
    kb = KbIndex.create(tmp_path / "1", MODEL, DIM)
    kb.upsert([record(1), record(2)])
    kb.save()
    kb.remove([2])
    kb.log_remove([2])
    stale = kb.journal.path.read_bytes()
    kb.upsert([record(2, "熊猫")])
    kb.log_upsert([record(2, "熊猫")])
    old_name = kb.journal.path.name
    kb.save()
    # The old journal outlived the new snapshot: replaying its removal would lose chunk 2.
    (tmp_path / "1" / old_name).write_bytes(stale)
    loaded = KbIndex.load(tmp_path / "1")
    assert loaded is not None
    assert loaded.documents == {1: 0, 2: 0}
    assert not (tmp_path / "1" / old_name).exists()


def test_replay_after_a_crash_between_snapshot_files_converges(tmp_path: Path) -> None:
    kb = KbIndex.create(tmp_path / "1", MODEL, DIM)
    kb.upsert([record(i) for i in range(4)])
    kb.save()
    for change in ([record(5)], [record(1, "熊猫")]):
        kb.upsert(change)
        kb.log_upsert(change)
    kb.remove([2])
    kb.log_remove([2])
    # A snapshot that crashed after its vectors file: meta still names the journal.
    kb.vectors.save(tmp_path / "1" / VECTORS_FILE)
    loaded = KbIndex.load(tmp_path / "1")
    assert loaded is not None
    assert_same(loaded, kb)


def test_a_journal_file_alone_is_no_index(tmp_path: Path) -> None:
    (tmp_path / "1").mkdir()
    Journal(tmp_path / "1" / "journal-x.log").append(Removed(np.array([1])))
    assert KbIndex.load(tmp_path / "1") is None
