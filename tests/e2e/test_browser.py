"""The web chat rendered by a real Chromium against the running suite (gateway + Streamlit)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontend.app import TITLE
from frontend.i18n import CATALOGUE

PLACEHOLDER = CATALOGUE["placeholder"][0]
DATA = Path(__file__).resolve().parents[1] / "data"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

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
            library_link = sidebar.get_by_role("link", name=CATALOGUE["page_library"][0])
            sync_api.expect(library_link).to_be_visible()
            # No error box: the page reached the gateway.
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000


# Each page, and an element that shows it has been drawn.
PAGES = {
    "chat": '[data-testid="stChatInput"]',
    "library": '[data-testid="stFileUploader"]',
    "lab": '[data-testid="stForm"]',
    "evaluation": '[data-testid="stAlertContentInfo"], [data-testid="stDataFrame"]',
}


def _wait_idle(page: Any) -> None:
    """Until Streamlit has finished the current run (its status widget is gone)."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=120_000)


def _shoot(page: Any, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def _upload_and_ask(sync_api: Any, page: Any, url: str, kb: str) -> None:
    """Upload the Chinese manual, wait for its job, ask, open the first source."""
    page.goto(f"{url}/library?kb={kb}", wait_until="domcontentloaded")
    dropzone = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    dropzone.wait_for(state="attached", timeout=90_000)
    dropzone.set_input_files(str(DATA / "zh_manual.md"))
    page.get_by_role("button", name=CATALOGUE["upload_button"][0]).click()
    done = page.get_by_text(f"zh_manual.md · {CATALOGUE['stage_done'][0]} · 100%")
    done.wait_for(timeout=180_000)
    _wait_idle(page)
    _shoot(page, "zh-library")
    page.goto(f"{url}/?kb={kb}", wait_until="domcontentloaded")  # chat: the default page
    chat_input = page.locator('[data-testid="stChatInput"] textarea')
    chat_input.wait_for(state="visible", timeout=90_000)
    chat_input.fill("天工X7 的 PP 棉滤芯多久更换一次？")
    chat_input.press("Enter")
    chip = page.get_by_role("button", name="zh_manual.md").first
    chip.wait_for(timeout=300_000)
    _wait_idle(page)
    _shoot(page, "zh-chat-answer")
    chip.click()
    dialog = page.locator('[role="dialog"]')
    sync_api.expect(dialog.locator("mark").first).to_be_visible(timeout=30_000)
    sync_api.expect(dialog.get_by_text("zh_manual.md")).to_be_visible()
    _shoot(page, "zh-chat-citation")
    page.keyboard.press("Escape")


def _every_page(page: Any, url: str, kb: str, lang: str) -> list[Path]:
    """Screenshots of the four pages in one language."""
    shots = []
    for path, ready in PAGES.items():
        route = "" if path == "chat" else path  # the default page lives at the root
        page.goto(f"{url}/{route}?kb={kb}", wait_until="domcontentloaded")
        page.locator(ready).first.wait_for(timeout=90_000)
        if path == "chat":  # resume the saved conversation
            page.locator('[class*="st-key-conv-"] button').first.click()
            page.locator('[data-testid="stChatMessage"]').nth(1).wait_for(timeout=60_000)
        if path == "lab":
            column = 0 if lang == "zh" else 1
            page.get_by_label(CATALOGUE["query"][column]).fill("滤芯更换")
            _wait_idle(page)
            page.get_by_role("button", name=CATALOGUE["search"][column]).click()
            page.locator('[data-testid="stDataFrame"]').wait_for(timeout=60_000)
        _wait_idle(page)
        assert page.locator('[data-testid="stAlertContentError"]').count() == 0, path
        shots.append(_shoot(page, f"{lang}-{path}"))
    return shots


def test_upload_ask_cite_and_every_page_in_both_languages(
    running_suite: Any, knowledge_base: str
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    url = running_suite.frontend_url
    shots: list[Path] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            viewport = {"width": 1280, "height": 900}
            zh = browser.new_page(viewport=viewport, locale="zh-CN")
            en = browser.new_page(viewport=viewport, locale="en-US")
            try:
                _upload_and_ask(sync_api, zh, url, knowledge_base)
                shots += _every_page(zh, url, knowledge_base, "zh")
                shots += _every_page(en, url, knowledge_base, "en")
            except Exception:
                for page, lang in ((zh, "zh"), (en, "en")):  # what the pages showed
                    _shoot(page, f"browser-failure-{lang}")
                raise
            sync_api.expect(en.get_by_text("Ask questions about your documents")).to_be_visible()
        finally:
            browser.close()
    assert all(shot.stat().st_size > 10_000 for shot in shots)


def test_a_sheet_and_a_scan_uploaded_in_the_web_app_show_their_row_and_page(
    running_suite: Any, knowledge_base: str, tmp_path: Path
) -> None:
    """New formats through the browser: the scan's citation opens its page, the sheet its rows."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from services.evaluation.parse_corpus import CJK_FONT, write_corpus

    if not CJK_FONT.exists():
        pytest.skip("fonts-noto-cjk renders the scanned page")
    files = [path for _case, path in write_corpus(tmp_path, {"table.xlsx", "zh_scan.pdf"})]
    url = running_suite.frontend_url
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        try:
            page.goto(f"{url}/library?kb={knowledge_base}", wait_until="domcontentloaded")
            dropzone = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
            dropzone.wait_for(state="attached", timeout=90_000)
            dropzone.set_input_files([str(path) for path in files])
            page.get_by_role("button", name=CATALOGUE["upload_button"][0]).click()
            for path in files:
                done = page.get_by_text(f"{path.name} · {CATALOGUE['stage_done'][0]} · 100%")
                done.wait_for(timeout=180_000)
            page.goto(f"{url}/?kb={knowledge_base}", wait_until="domcontentloaded")
            for question, name, shows in (
                ("售后服务热线是多少？", "zh_scan.pdf", '[data-testid="stImage"] img'),
                ("PP 棉滤芯 F-180 的单价是多少？", "table.xlsx", '[data-testid="stDataFrame"]'),
            ):
                chat_input = page.locator('[data-testid="stChatInput"] textarea')
                chat_input.wait_for(state="visible", timeout=90_000)
                chat_input.fill(question)
                chat_input.press("Enter")
                chip = page.get_by_role("button", name=name).last
                chip.wait_for(timeout=300_000)
                _wait_idle(page)
                chip.click()
                dialog = page.locator('[role="dialog"]')
                # The scan's page as an image, the sheet's rows as a table; the quote marked.
                dialog.locator(shows).first.wait_for(timeout=60_000)
                sync_api.expect(dialog.locator("mark").first).to_be_visible(timeout=30_000)
                _shoot(page, f"zh-citation-{name}")
                page.keyboard.press("Escape")
        except Exception:
            _shoot(page, "browser-failure-formats")
            raise
        finally:
            browser.close()
