"""The feedback CSV export never hands a spreadsheet a formula."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from services.common.conversation_schemas import FeedbackPublic
from services.gateway.feedback.service import as_csv, spreadsheet_safe


def _item(comment: str, question: str = "what?", answer: str = "this") -> FeedbackPublic:
    return FeedbackPublic(
        id=1,
        message_id=None,
        knowledge_base="docs",
        rating=-1,
        comment=comment,
        question=question,
        answer=answer,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_formula_comment_is_exported_as_text() -> None:
    text = as_csv([_item('=HYPERLINK("http://x","y")', question="+1+1", answer="@SUM(A1)")])
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["comment"] == '\'=HYPERLINK("http://x","y")'
    assert row["question"] == "'+1+1"
    assert row["answer"] == "'@SUM(A1)"
    assert row["rating"] == "-1"  # a number stays a number
    assert row["knowledge_base"] == "docs"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_formula_start_is_quoted(start: str) -> None:
    assert spreadsheet_safe(f"{start}cmd") == f"'{start}cmd"


@pytest.mark.parametrize("value", ["plain text", "a=b", "", 3, -1, None])
def test_other_values_are_unchanged(value: object) -> None:
    assert spreadsheet_safe(value) == value
