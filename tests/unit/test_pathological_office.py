"""Office bombs and oversized sheets are refused with their reason, quickly, in the child."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ingestion.loaders import load_text
from services.common.errors import ZhikuError
from services.common.filetypes import ZIP_TYPES, check_zip_package
from services.common.settings import ParsingSettings
from tests.data.pathological import REFUSED, write_pathological

LIMITS = ParsingSettings(timeout_s=60)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_office_bomb_or_huge_sheet_is_refused_with_its_reason(tmp_path: Path, name: str) -> None:
    path, kind = write_pathological(tmp_path, name)
    reason = REFUSED[name][2]
    started = time.monotonic()
    with pytest.raises(ZhikuError, match=reason):
        load_text(path, kind, LIMITS)
    assert time.monotonic() - started < LIMITS.timeout_s


@pytest.mark.parametrize("name", ["bomb.xlsx", "bomb.pptx"])
def test_the_upload_check_refuses_office_bombs_before_storing(tmp_path: Path, name: str) -> None:
    path, kind = write_pathological(tmp_path, name)
    assert kind in ZIP_TYPES
    with pytest.raises(ZhikuError, match="zip bomb"):
        check_zip_package(path.read_bytes(), name, 200, 200)
