"""A spreadsheet and a scanned PDF through the ingestion pipeline: a row and the OCR'd text are
found by search, with the real embedder, a real retriever process and the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rapidfuzz.distance import LCSseq
from sqlalchemy import select

from ingestion.pipeline import IngestionContext, ingest_job
from services.common import jobs
from services.common.db import make_engine, make_sessionmaker
from services.common.embedding import create_embedder
from services.common.filetypes import CONTENT_TYPES, detect_type
from services.common.models import Chunk, Document, Job, KnowledgeBase
from services.common.settings import Settings
from services.evaluation.parse_corpus import CJK_FONT, TABLE, ZH_TEXT, write_corpus
from tests.integration.test_index_rebuild import retriever_process, settings  # noqa: F401

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CJK_FONT.exists(), reason="fonts-noto-cjk renders the scanned page"),
]


def _ingest(ctx: IngestionContext, kb_id: int, path: Path) -> tuple[Job, dict[int, str]]:
    """Run the document's job as the worker does; its job and its chunks by id."""
    kind = detect_type(path.name, path.read_bytes()[:4096])
    with ctx.sessions.begin() as session:
        doc = Document(
            knowledge_base_id=kb_id, filename=path.name, content_type=CONTENT_TYPES[kind],
            size_bytes=path.stat().st_size, sha256=kind.ljust(64, "0"), storage_path=str(path),
        )  # fmt: skip
        job_id = jobs.create_job(session, doc).id
    ingest_job(ctx, job_id)
    with ctx.sessions() as session:
        job = session.get(Job, job_id)
        rows = session.execute(select(Chunk.id, Chunk.text).where(Chunk.document_id == doc.id))
        texts = {chunk_id: text for chunk_id, text in rows}
    assert job is not None
    return job, texts


@pytest.fixture
def drive(settings: Settings) -> Iterator[tuple[IngestionContext, int]]:  # noqa: F811
    """The worker's context on a real retriever process, and an empty knowledge base."""
    embedder = create_embedder(settings.embedding)
    with retriever_process(settings) as client:
        ctx = IngestionContext(
            settings=settings,
            sessions=make_sessionmaker(make_engine(settings.sqlalchemy_url)),
            embedder=embedder,
            retriever=client,
        )
        with ctx.sessions.begin() as session:
            kb = KnowledgeBase(
                name="drive", embedding_model=embedder.name, embedding_dim=embedder.dim
            )
            session.add(kb)
            session.flush()
            kb_id = kb.id
        yield ctx, kb_id


@pytest.mark.timeout(600)
def test_a_sheet_row_and_a_scanned_page_are_found_by_search(
    drive: tuple[IngestionContext, int], tmp_path: Path
) -> None:
    ctx, kb_id = drive
    client, model = ctx.retriever, ctx.embedder.name
    files = dict(
        (case.name, path)
        for case, path in write_corpus(tmp_path / "docs", {"table.xlsx", "zh_scan.pdf"})
    )
    sheet_job, sheet_chunks = _ingest(ctx, kb_id, files["table.xlsx"])
    scan_job, scan_chunks = _ingest(ctx, kb_id, files["zh_scan.pdf"])
    assert (sheet_job.stage, sheet_job.error) == ("done", None)
    assert (scan_job.stage, scan_job.error) == ("done", None)

    chunks = {**sheet_chunks, **scan_chunks}
    header, row = (" | ".join(cells) for cells in (TABLE[0], TABLE[4]))
    hits = client.search(kb_id, f"{TABLE[4][0]} {TABLE[4][1]} 的单价", 3, model)
    found = [chunks[hit.chunk_id] for hit in hits]
    assert any(f"| {row} |" in text and f"| {header} |" in text for text in found), found

    hits = client.search(kb_id, "售后服务热线是多少", 3, model)
    found = [chunks[hit.chunk_id] for hit in hits]
    assert hits[0].chunk_id in scan_chunks
    assert any("四零零八二零七七八八" in text for text in found), found
    assert ZH_TEXT[0] in "".join(scan_chunks.values())  # the OCR'd page, whole


@pytest.mark.timeout(600)
def test_a_multi_page_scan_is_read_page_by_page_with_the_ocr_settings(
    drive: tuple[IngestionContext, int], tmp_path: Path
) -> None:
    from services.evaluation.ocr_speed import write_scan

    ctx, kb_id = drive
    path = tmp_path / "scan.pdf"
    expected = write_scan(path, 3)
    # The OCR settings travel to the parser child: here a smaller page and detection scale.
    ctx.settings.parsing = ctx.settings.parsing.model_copy(
        update={"ocr_max_side": 1600, "ocr_det_scale": 0.35}
    )
    job, chunks = _ingest(ctx, kb_id, path)
    assert (job.stage, job.error) == ("done", None)
    by_page: dict[int, str] = {}
    with ctx.sessions() as session:
        rows = session.execute(
            select(Chunk.location, Chunk.text).where(Chunk.id.in_(chunks)).order_by(Chunk.id)
        )
        for location, text in rows:
            page = location["page"]
            by_page[page] = by_page.get(page, "") + "".join(text.split())
    assert sorted(by_page) == [1, 2, 3]
    # Each page's text is in its own chunks (OCR may miss a character; overlaps repeat some).
    for page, text in enumerate(expected, start=1):
        want = "".join(text.split())
        recall = LCSseq.similarity(want, by_page[page]) / len(want)
        assert recall >= 0.95, (page, recall, want, by_page[page])
