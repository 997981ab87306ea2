"""The embedded queue's message files appear whole or not at all."""

from __future__ import annotations

from pathlib import Path

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
