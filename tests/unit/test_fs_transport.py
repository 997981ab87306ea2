"""The embedded queue's message files appear whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kombu import Connection

from services.common.fs_transport import ALIAS


def test_messages_round_trip_and_leave_no_partial_files(tmp_path: Path) -> None:
    folder = str(tmp_path)
    options = {"data_folder_in": folder, "data_folder_out": folder}
    with Connection(f"{ALIAS}://", transport_options=options) as conn:
        queue = conn.SimpleQueue("zhiku-test.ingest")
        queue.put({"job": "j1", "text": "知库"})
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
        assert [p.suffix for p in tmp_path.glob("*.msg")] == [".msg"]
        message = queue.get(timeout=5)
        assert message.payload == {"job": "j1", "text": "知库"}
        message.ack()
        queue.close()


def test_a_message_reaches_the_disk_before_it_is_visible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is synced before its rename and the folder after, so "queued" survives a crash."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        target = os.readlink(f"/proc/self/fd/{descriptor}")
        size = os.fstat(descriptor).st_size
        events.append(("fsync", f"{Path(target).name}:{size}"))
        real_fsync(descriptor)

    def replace(source: str, destination: str) -> None:
        events.append(("replace", Path(destination).name))
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    folder = str(tmp_path)
    options = {"data_folder_in": folder, "data_folder_out": folder}
    with Connection(f"{ALIAS}://", transport_options=options) as conn:
        queue = conn.SimpleQueue("zhiku-test.ingest")
        queue.put({"job": "j1"})
        queue.close()
    kinds = [kind for kind, _ in events]
    assert kinds == ["fsync", "replace", "fsync"], events
    file_synced, renamed, folder_synced = (detail for _, detail in events)
    name, size = file_synced.rsplit(":", 1)
    assert name == f".{renamed}.part" and int(size) > 0  # the whole message, under its temp name
    assert folder_synced.split(":")[0] == tmp_path.name
