"""The web chat rendered by a real Chromium against the running suite (gateway + Streamlit)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontend.app import TITLE
from frontend.chat import PLACEHOLDER

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "test-artifacts" / "streamlit-chat.png"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian Chromium missing at /usr/bin/chromium "
        "(apt-get install -y --no-install-recommends chromium fonts-noto-cjk)",
    ),
]


@pytest.fixture
def knowledge_base(running_suite: Any) -> Iterator[str]:
    """A fresh knowledge base, so that the page has one to chat with; removed afterwards."""
    name = f"browser-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=running_suite.gateway_url, timeout=30) as http:
        created = http.post("/api/v1/knowledge-bases", json={"name": name, "description": "e2e"})
        assert created.status_code == 201, created.text
        yield name
        http.delete(f"/api/v1/knowledge-bases/{name}")


def test_chat_page_renders_in_chromium(running_suite: Any, knowledge_base: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            page.goto(running_suite.frontend_url, wait_until="domcontentloaded")
            chat_input = page.locator('[data-testid="stChatInput"] textarea')
            chat_input.wait_for(state="visible", timeout=90_000)
            sync_api.expect(chat_input).to_have_attribute("placeholder", PLACEHOLDER)
            sync_api.expect(chat_input).to_be_enabled()
            sync_api.expect(page.get_by_role("heading", name=TITLE)).to_be_visible()
            sidebar = page.locator('[data-testid="stSidebar"]')
            sync_api.expect(sidebar.get_by_text("知识库 / Knowledge bases")).to_be_visible()
            # No error box: the page reached the gateway.
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
