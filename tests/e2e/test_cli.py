"""The installed `zhiku` command against the running suite, as a user types it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningSuite

pytestmark = pytest.mark.e2e

DATA = Path(__file__).resolve().parents[1] / "data"
ZHIKU = Path(sys.executable).with_name("zhiku")


def _zhiku(suite: RunningSuite, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ZHIKU), "--gateway", suite.gateway_url, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_ingest_a_folder_then_ask_and_list(running_suite: RunningSuite, tmp_path: Path) -> None:
    folder = tmp_path / "docs" / "nested"
    folder.mkdir(parents=True)
    (folder / "report.txt").write_bytes((DATA / "en_report.txt").read_bytes())
    (folder / "page.html").write_bytes((DATA / "sample.html").read_bytes())
    (folder / "ignored.bin").write_bytes(b"\x00\x01")
    ingest = _zhiku(running_suite, "ingest", str(tmp_path / "docs"), "--kb", "cli-docs")
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    assert "report.txt" in ingest.stdout and "page.html" in ingest.stdout
    assert "ignored.bin" not in ingest.stdout

    ask = _zhiku(running_suite, "ask", "What was the 2024 operating budget?", "--kb", "cli-docs")
    assert ask.returncode == 0, ask.stderr
    assert "8.7 million" in ask.stdout
    assert "report.txt" in ask.stdout  # the sources follow the answer

    listing = _zhiku(running_suite, "kb", "list")
    assert "cli-docs" in listing.stdout

    missing = _zhiku(running_suite, "ask", "hello?", "--kb", "no-such-kb")
    assert missing.returncode == 1
    assert "not_found" in missing.stdout + missing.stderr
    assert "Traceback" not in missing.stdout + missing.stderr
