"""Documents as people have them, end to end: spreadsheets, slides, Word and PDF tables, scans.

One knowledge base holds one upload of every new format (the parse-eval corpus plus a price list
of items found nowhere else); the REST API, the CLI and the web app's type lists are checked
against it, and chat answers from a spreadsheet row and from an OCR'd page.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from services.client import SUPPORTED_EXTENSIONS
from services.common.schemas import ChatResponse, ChunkHit, ChunkPublic, JobPublic, SearchResponse
from services.evaluation.parse_corpus import CJK_FONT, write_corpus
from tests.e2e.conftest import RunningSuite, top_hit, upload_and_wait

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CJK_FONT.exists(), reason="fonts-noto-cjk missing"),
]

KB = "e2e-formats"
CORPUS = ("table.pdf", "table.docx", "table.xlsx", "slides.pptx", "zh_scan.pdf", "zh_scan.png")
PRICES = [
    ["商品", "编号", "单价（元）", "库存"],
    ["蓝鲸保温杯", "BW-12", "128", "40"],
    ["赤狐登山杖", "HT-7", "356", "12"],
    ["白鹭折叠椅", "FC-3", "219", "25"],
]
# A query for each file, and a fact its own hit must hold (the corpus repeats its table and
# its sentences across formats, so the file need only be among the hits).
# The hit also says where in its file it was read.
FOUND_BY = [
    ("table.pdf", "活性炭滤芯 C-360 单价", "| 活性炭滤芯 | C-360 | 159 |", {"page": 1}),
    ("table.docx", "反渗透膜 RO-500 保修期", "| 反渗透膜 | RO-500 | 699 |", None),
    ("table.xlsx", "PP 棉滤芯 F-180 单价", "| PP 棉滤芯 | F-180 | 89 |", {"sheet": "价格表"}),
    ("slides.pptx", "Kestrel Range weather mast peak gust", "41 metres per second", {"slide": 4}),
    ("zh_scan.pdf", "首次使用前连续放水冲洗滤芯", "放水十分钟", {"page": 1}),
    ("zh_scan.png", "天工系列智能净水器", "天工系列智能净水器", None),
    ("prices.xlsx", "赤狐登山杖 HT-7", "| 赤狐登山杖 | HT-7 | 356 |", {"sheet": "价格"}),
]
ZHIKU = Path(sys.executable).with_name("zhiku")


def _write_prices(folder: Path) -> Path:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("价格")
    for row in PRICES:
        sheet.append(row)
    path = folder / "prices.xlsx"
    workbook.save(path)
    return path


@pytest.fixture(scope="module")
def formats_kb(
    running_suite: RunningSuite, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, JobPublic]:
    """One upload of every new format into a fresh knowledge base; the jobs by filename."""
    folder = tmp_path_factory.mktemp("formats")
    paths = [path for _case, path in write_corpus(folder, set(CORPUS))]
    paths.append(_write_prices(folder))
    created = running_suite.client.post("/api/v1/knowledge-bases", json={"name": KB})
    assert created.status_code == 201, created.text
    files = [
        ("files", (path.name, path.read_bytes(), "application/octet-stream")) for path in paths
    ]
    accepted, jobs = upload_and_wait(running_suite.client, KB, files, timeout_s=300)
    assert accepted.rejected == [] and accepted.duplicates == []
    return jobs


def test_every_format_is_ingested(formats_kb: dict[str, JobPublic]) -> None:
    assert set(formats_kb) == {*CORPUS, "prices.xlsx"}
    failed = {name: job.error for name, job in formats_kb.items() if job.stage != "done"}
    assert failed == {}


def _hits(suite: RunningSuite, query: str, top_k: int = 10) -> list[ChunkHit]:
    body = {"knowledge_base": KB, "query": query, "top_k": top_k}
    response = suite.client.post("/api/v1/search", json=body)
    assert response.status_code == 200, response.text
    return SearchResponse.model_validate(response.json()).hits


@pytest.mark.parametrize(("document", "query", "fact", "where"), FOUND_BY)
def test_each_format_is_found_by_its_own_words_and_says_where(
    running_suite: RunningSuite,
    formats_kb: dict[str, JobPublic],
    document: str,
    query: str,
    fact: str,
    where: dict[str, object] | None,
) -> None:
    hits = _hits(running_suite, query)
    mine = [hit for hit in hits if hit.document_name == document and fact in hit.text]
    assert mine, [(hit.document_name, hit.text[:80]) for hit in hits]
    location = mine[0].location
    if where is None:
        assert location is None
    else:
        assert location is not None
        assert location.model_dump(exclude_none=True).items() >= where.items()


def _ask(suite: RunningSuite, question: str) -> ChatResponse:
    body = {"knowledge_base": KB, "messages": [{"role": "user", "content": question}]}
    response = suite.client.post("/api/v1/chat", json=body)
    assert response.status_code == 200, response.text
    return ChatResponse.model_validate(response.json())


def test_chat_answers_from_a_spreadsheet_row(
    running_suite: RunningSuite, formats_kb: dict[str, JobPublic]
) -> None:
    chat = _ask(running_suite, "赤狐登山杖的单价是多少元？")
    cited = [c for c in chat.citations if c.document_name == "prices.xlsx"]
    assert cited, (chat.answer, [c.document_name for c in chat.citations])
    assert any("356" in c.quote for c in cited)
    # The row reached the model with the header that says which cell is the price.
    path = f"/api/v1/knowledge-bases/{KB}/chunks/{cited[0].chunk_id}"
    chunk = ChunkPublic.model_validate(running_suite.client.get(path).json())
    assert "| 赤狐登山杖 | HT-7 | 356 |" in chunk.text and "单价" in chunk.text
    # The citation says where: the sheet, and the rows of the chunk (the header is row 1).
    assert cited[0].location is not None
    assert (cited[0].location.sheet, cited[0].location.rows) == ("价格", "2-4")
    assert "356" in chat.answer


def test_chat_answers_from_an_ocr_page(
    running_suite: RunningSuite, formats_kb: dict[str, JobPublic]
) -> None:
    chat = _ask(running_suite, "首次使用净水器前，要连续放水多长时间？")
    cited = [c for c in chat.citations if c.document_name == "zh_scan.pdf"]
    assert cited, (chat.answer, [c.document_name for c in chat.citations])
    assert any("放水十分钟" in c.quote for c in cited)
    assert all(c.location is not None and c.location.page == 1 for c in cited)
    assert "十分钟" in chat.answer or "10" in chat.answer


def test_cli_ingests_a_csv(
    running_suite: RunningSuite, formats_kb: dict[str, JobPublic], tmp_path: Path
) -> None:
    (tmp_path / "rates.csv").write_text("城市,运费（元）\n拉萨,58\n喀什,64\n", encoding="utf-8")
    ingest = subprocess.run(
        [str(ZHIKU), "--gateway", running_suite.gateway_url, "ingest", str(tmp_path), "--kb", KB],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    assert "rates.csv" in ingest.stdout
    hit = top_hit(running_suite.client, KB, "喀什 运费", top_k=5)
    assert hit.document_name == "rates.csv" and "| 喀什 | 64 |" in hit.text


def test_the_web_app_and_the_cli_offer_every_new_type() -> None:
    # frontend/library.py passes SUPPORTED_EXTENSIONS to st.file_uploader; the CLI filters by it.
    assert {"csv", "xlsx", "pptx", "docx", "pdf", "png", "jpg"} <= set(SUPPORTED_EXTENSIONS)
