"""The web app's chat page through AppTest: gateway states, saved chats, streaming, sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from frontend.citations import chip_label, highlight
from frontend.i18n import CATALOGUE
from services.client import GatewayClient
from services.common.schemas import Citation
from tests.unit.frontend_gateway import CITATION, NOW, FakeGateway, conversation

APP = str(Path(__file__).resolve().parents[2] / "frontend" / "app.py")


def run_app(client: GatewayClient | None = None, lang: str = "zh") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["lang"] = lang
    if client is not None:
        at.session_state["client"] = client
    return at.run()


def texts(at: AppTest) -> str:
    """Every text element of the page joined, to look for messages."""
    parts = [
        e.value
        for kind in ("markdown", "caption", "info", "error", "warning")
        for e in getattr(at, kind)
    ]
    return "\n".join(str(p) for p in parts)


def test_unreachable_gateway_shows_how_to_start_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_GATEWAY_URL", "http://127.0.0.1:9")
    at = run_app(lang="en")
    assert not at.exception
    assert at.title[0].value == "知库 Zhiku"
    assert "http://127.0.0.1:9" in at.error[0].value and "make run" in at.error[0].value
    assert len(at.chat_input) == 0


def test_not_ready_names_the_failing_check() -> None:
    at = run_app(FakeGateway(ready=503).client(), lang="en")
    assert not at.exception
    assert any("Model loading" in i.value and "llm: no worker yet" in i.value for i in at.info)
    assert "database" not in at.info[0].value  # only the failing checks are named


@pytest.mark.parametrize("status", [401, 403])
def test_a_missing_or_wrong_key_says_to_set_it(status: int) -> None:
    at = run_app(FakeGateway(auth_status=status).client(), lang="en")
    assert not at.exception
    assert any("ZHIKU_API_KEY" in e.value and str(status) in e.value for e in at.error)


def test_no_knowledge_base_disables_the_chat() -> None:
    at = run_app(FakeGateway(kbs=[]).client())
    assert not at.exception
    assert at.chat_input[0].placeholder == CATALOGUE["placeholder_no_kb"][0]
    assert at.chat_input[0].disabled


def test_a_first_question_opens_a_saved_chat_and_shows_sources() -> None:
    gateway = FakeGateway()
    at = run_app(gateway.client(), lang="en")
    assert at.chat_input[0].placeholder == "Ask the knowledge base…"
    at.chat_input[0].set_value("知库支持哪些格式？").run()
    assert not at.exception
    assert gateway.conversations[1]["title"] == "知库支持哪些格式？"
    chat = next(body for method, path, body in gateway.requests if path == "/api/v1/chat")
    assert chat["conversation_id"] == 1 and chat["mode"] == "hybrid" and chat["top_k"] == 5
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assistant = at.chat_message[1]
    assert any("知库支持PDF[1]。" in md.value for md in assistant.markdown)
    assert [b.label for b in assistant.button] == ["[1] 指南.pdf"]
    assert at.session_state["conversation"] == 1
    assert [b.label for b in at.sidebar.button if b.key == "conv-1"] == ["知库支持哪些格式？"]


def test_the_passages_read_show_before_the_first_token() -> None:
    # A stream cut after its sources leaves the page as it stood before the first token.
    gateway = FakeGateway(fail_after_sources=True)
    at = run_app(gateway.client(), lang="en")
    at.chat_input[0].set_value("知库支持哪些格式？").run()
    assert not at.exception
    [reading] = at.chat_message[1].status
    assert reading.label == "Reading 1 passages…"
    assert any("[1] 指南.pdf" in c.value and "知库支持 PDF" in c.value for c in reading.caption)
    assert "the llm worker stopped" in texts(at)


def test_a_past_chat_resumes_with_its_history_and_settings() -> None:
    gateway = FakeGateway()
    gateway.conversations[7] = conversation(
        7,
        "旧对话",
        [
            {"id": 1, "role": "user", "content": "旧问题", "created_at": NOW},
            {
                "id": 2,
                "role": "assistant",
                "content": "旧答案[1]",
                "citations": [CITATION],
                "created_at": NOW,
            },
        ],
    )
    at = run_app(gateway.client())
    at.sidebar.button(key="conv-7").click().run()
    assert not at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    at.sidebar.selectbox(key="set_mode").set_value("keyword")
    at.sidebar.slider(key="set_top_k").set_value(3)
    at.sidebar.text_area(key="set_system_prompt").set_value("只用一句话回答。")
    at.chat_input[0].set_value("新问题").run()
    chat = next(body for method, path, body in gateway.requests if path == "/api/v1/chat")
    assert chat["conversation_id"] == 7 and chat["messages"] == [
        {"role": "user", "content": "新问题"}
    ]
    assert chat["mode"] == "keyword" and chat["top_k"] == 3
    assert chat["system_prompt"] == "只用一句话回答。"
    assert len(at.chat_message) == 4


def test_rename_and_delete_a_past_chat() -> None:
    gateway = FakeGateway()
    gateway.conversations[3] = conversation(3, "甲")
    at = run_app(gateway.client())
    at.sidebar.text_input(key="conv-title-3").set_value("乙")
    at.sidebar.button(key="conv-rename-3").click().run()
    assert not at.exception and gateway.conversations[3]["title"] == "乙"
    at.sidebar.button(key="conv-delete-3").click().run()
    assert not at.exception and 3 not in gateway.conversations


def test_thumbs_and_a_comment_are_sent() -> None:
    gateway = FakeGateway()
    at = run_app(gateway.client())
    at.chat_input[0].set_value("问").run()
    at.feedback(key="thumbs-101").set_value(0).run()  # thumbs down
    sent = [body for method, path, body in gateway.requests if path == "/api/v1/feedback"]
    assert sent[-1]["message_id"] == 101 and sent[-1]["rating"] == -1
    at.text_input(key="comment-text-101").set_value("引用不对")
    at.button(key="FormSubmitter:comment-101-发送").click().run()
    sent = [body for method, path, body in gateway.requests if path == "/api/v1/feedback"]
    assert sent[-1]["comment"] == "引用不对" and sent[-1]["rating"] == -1


def test_highlight_marks_the_quote_even_across_line_breaks() -> None:
    text = "第一句。\n它支持 PDF、DOCX\n与 HTML 文件。<script>"
    marked = highlight(text, "支持 PDF、DOCX 与 HTML")
    assert "<mark>支持 PDF、DOCX<br>与 HTML</mark>" in marked
    assert "&lt;script&gt;" in marked and "<script>" not in marked
    assert "<mark>" not in highlight(text, "不在文中的句子")
    assert chip_label(Citation.model_validate(CITATION)) == "[1] 指南.pdf"


def test_both_languages_have_every_string() -> None:
    assert all(zh.strip() and en.strip() for zh, en in CATALOGUE.values())
    for zh, en in CATALOGUE.values():
        assert zh.count("{") == en.count("{")


def test_with_web_users_the_app_asks_to_log_in_and_uses_that_login() -> None:
    gateway = FakeGateway(users={"alice": "correct horse"})
    at = run_app(gateway.client(), lang="en")
    assert not at.exception and len(at.chat_input) == 0  # nothing but the login form
    at.text_input[0].input("alice")
    at.text_input[1].input("wrong")
    at.button[0].click().run()
    assert any("Wrong username or password" in e.value for e in at.error)
    at.text_input[1].input("correct horse")
    at.button[0].click().run()
    assert not at.exception and len(at.chat_input) == 1
    assert "Logged in as alice" in texts(at)
    listed = [r for r in gateway.requests if r[:2] == ("GET", "/api/v1/knowledge-bases")]
    assert listed  # sent with alice's session token (the fake answers 401 to anything else)
    gateway.sessions.clear()  # the session expires
    at.run()
    assert "Your login has ended" in texts(at) and len(at.chat_input) == 0


def test_log_out_ends_the_session_at_the_gateway() -> None:
    gateway = FakeGateway(users={"alice": "correct horse"})
    at = run_app(gateway.client(), lang="en")
    at.text_input[0].input("alice")
    at.text_input[1].input("correct horse")
    at.button[0].click().run()
    assert gateway.sessions and len(at.chat_input) == 1
    next(b for b in at.button if b.key == "logout").click().run()
    assert not at.exception and gateway.sessions == {}
    assert len(at.chat_input) == 0 and len(at.text_input) == 2  # the login form again


def test_a_source_says_where_it_was_read_and_shows_its_rows() -> None:
    from frontend.citations import location_label, table_rows
    from services.common.chunks import ChunkLocation

    sheet = ChunkLocation(sheet="价格", rows="2-3")
    assert location_label(sheet) in ("工作表「价格」 · 第 2-3 行", "sheet '价格' · rows 2-3")
    assert location_label(ChunkLocation(page=3)) in ("第 3 页", "page 3")
    assert location_label(None) == ""
    text = "## Sheet: 价格\n\n| 商品 | 单价 |\n| --- | --- |\n| 蓝鲸保温杯 | 128 |"
    assert table_rows(text) == [["商品", "单价"], ["蓝鲸保温杯", "128"]]
    assert table_rows("no table here") == []
