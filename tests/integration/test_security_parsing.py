"""Parsing is bounded: every format in a child process with time and memory limits, PDF pages
limited, .docx bombs refused; an ingestion job is bounded by its time limit."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from pathlib import Path
from types import ModuleType
from typing import cast

import numpy as np
import pytest
from numpy.typing import NDArray
from pypdf import PdfWriter

from ingestion.loaders import load_text
from ingestion.pipeline import IngestionContext
from services.common.chunks import ChunkIn
from services.common.db import make_engine, make_sessionmaker, upgrade_database
from services.common.errors import DocumentParseError, PayloadTooLargeError
from services.common.filetypes import CONTENT_TYPES
from services.common.lazy import Lazy
from services.common.models import Document, Job, KnowledgeBase
from services.common.retriever_client import RetrieverClient
from services.common.settings import ParsingSettings, Settings
from tests.data.pathological import PATHOLOGICAL, write_pathological

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data"


def _blank_pdf(path: Path, pages: int) -> Path:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    with path.open("wb") as out:
        writer.write(out)
    return path


def test_pdf_text_comes_from_the_bounded_child() -> None:
    text = load_text(DATA / "sample.pdf", "pdf", ParsingSettings(timeout_s=60))
    assert "Kestrel Range" in text


def test_pdf_over_the_page_limit_is_refused(tmp_path: Path) -> None:
    path = _blank_pdf(tmp_path / "many.pdf", 3)
    with pytest.raises(DocumentParseError, match=r"3 pages, over the limit of 2.*PDF_MAX_PAGES"):
        load_text(path, "pdf", ParsingSettings(pdf_max_pages=2))


def test_pdf_over_the_time_limit_is_refused() -> None:
    # No PDF parses in a millisecond, not even the child's start: the limit is what answers.
    with pytest.raises(
        DocumentParseError, match=r"took longer than 0.001 s \(ZHIKU_PARSING__TIMEOUT_S\)"
    ):
        load_text(DATA / "sample.pdf", "pdf", ParsingSettings(timeout_s=0.001))


@pytest.mark.timeout(60)
def test_a_parser_that_would_take_hours_is_stopped_at_the_limit(tmp_path: Path) -> None:
    # Python's own HTML parser rescans an unclosed comment at each "<": quadratic, not ours to
    # fix; 40k of them take half a minute, 1 MB of them hours. The child's limit answers.
    path = tmp_path / "unclosed.html"
    path.write_bytes(b"<!--" + b"a<" * 2**19)
    started = time.monotonic()
    with pytest.raises(DocumentParseError, match=r"html file took longer than 3 s"):
        load_text(path, "html", ParsingSettings(timeout_s=3))
    assert time.monotonic() - started < 20
    assert "Aurora Ridge" in load_text(DATA / "en_report.txt", "txt")


@pytest.mark.parametrize(("name", "kind"), [("sample.pdf", "pdf"), ("sample.html", "html")])
def test_parsing_over_the_memory_cap_is_refused(name: str, kind: str) -> None:
    # 16 MB of address space is too little for the parser to load: the cap is what answers.
    with pytest.raises(DocumentParseError, match="ZHIKU_PARSING__MAX_MEMORY_MB"):
        load_text(DATA / name, kind, ParsingSettings(max_memory_mb=16))


def _docx(tmp_path: Path, document: bytes) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b'<?xml version="1.0"?><Types/>')
        archive.writestr("word/document.xml", document)
    path = tmp_path / "bomb.docx"
    path.write_bytes(buffer.getvalue())
    return path


def test_worker_refuses_docx_bombs_already_stored(tmp_path: Path) -> None:
    """Files stored before the upload check existed are refused by the worker too."""
    big = _docx(tmp_path, b"<a>" + b"0" * (3 * 2**20) + b"</a>")
    with pytest.raises(PayloadTooLargeError, match="MAX_UNPACKED_MB"):
        load_text(big, "docx", ParsingSettings(max_unpacked_mb=2))
    with pytest.raises(DocumentParseError, match="zip bomb"):
        load_text(big, "docx", ParsingSettings(max_compression_ratio=50))
    entity = _docx(tmp_path, b'<!DOCTYPE d [<!ENTITY e "x">]><w:document>&e;</w:document>')
    with pytest.raises(DocumentParseError, match="entities"):
        load_text(entity, "docx")
    assert "Word" in load_text(DATA / "sample.docx", "docx") or load_text(
        DATA / "sample.docx", "docx"
    )


class FakeEmbedder:
    """Embeds instantly, or as slowly as a test needs; the real model is not what is tested."""

    name, dim = "fake", 4

    def __init__(self) -> None:
        self.delay_s = 0.0

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        time.sleep(self.delay_s)
        return np.ones((len(texts), self.dim), dtype=np.float32) / 2


class FakeRetriever:
    def add(self, kb_id: int, model: str, dim: int, items: list[ChunkIn]) -> int:
        return len(items)

    def delete(self, kb_id: int, chunk_ids: list[int]) -> None:
        return None


@pytest.fixture
def worker(postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The ingestion worker module, its task run inline on PostgreSQL with fake model/index."""
    from ingestion import worker as module

    upgrade_database(postgres_url)
    settings = Settings(
        data_dir=tmp_path, database_url=postgres_url, parsing=ParsingSettings(timeout_s=60)
    )
    ctx = IngestionContext(
        settings=settings,
        sessions=make_sessionmaker(make_engine(postgres_url)),
        embedder=FakeEmbedder(),
        retriever=cast(RetrieverClient, FakeRetriever()),
    )
    monkeypatch.setattr(module, "_context", Lazy(lambda: ctx))
    monkeypatch.setattr(module, "settings", settings)
    return module


def _queue(worker: ModuleType, path: Path, kind: str) -> str:
    ctx: IngestionContext = worker.get_context()
    with ctx.sessions.begin() as session:
        kb = KnowledgeBase(
            name=f"kb-{uuid.uuid4().hex[:8]}", embedding_model="fake", embedding_dim=4
        )
        session.add(kb)
        session.flush()
        doc = Document(
            knowledge_base_id=kb.id, filename=path.name, content_type=CONTENT_TYPES[kind],
            size_bytes=path.stat().st_size, sha256=uuid.uuid4().hex * 2, storage_path=str(path),
        )  # fmt: skip
        session.add(doc)
        session.flush()
        job_id = str(uuid.uuid4())
        session.add(Job(id=job_id, knowledge_base_id=kb.id, document_id=doc.id, filename=path.name))
    return job_id


def _run(worker: ModuleType, job_id: str) -> Job:
    worker.ingest_document(job_id)  # the Celery task, called inline as the solo pool does
    with worker.get_context().sessions() as session:
        job = session.get(Job, job_id)
    assert job is not None
    return cast(Job, job)


@pytest.mark.timeout(len(PATHOLOGICAL) * 150)
def test_pathological_uploads_end_in_bounded_time_and_the_worker_goes_on(
    worker: ModuleType, tmp_path: Path
) -> None:
    limit = worker.settings.parsing.timeout_s
    for name in sorted(PATHOLOGICAL):
        path, kind = write_pathological(tmp_path, name)
        started = time.monotonic()
        job = _run(worker, _queue(worker, path, kind))
        assert job.stage in ("done", "failed"), name
        # Parsing is bounded by its limit; chunking, storing and fake embedding take seconds.
        assert time.monotonic() - started < limit + 60, name
    normal = _run(worker, _queue(worker, DATA / "en_report.txt", "txt"))
    assert (normal.stage, normal.error) == ("done", None)


def test_the_ingestion_task_carries_its_time_limit() -> None:
    from ingestion.worker import ingest_document, settings

    assert ingest_document.time_limit == settings.ingest_time_limit_s


@pytest.mark.timeout(120)
def test_a_job_past_its_soft_time_limit_fails_with_the_reason(worker: ModuleType) -> None:
    # Settings refuses a soft limit under the parsing timeout; the copy skips that check.
    worker.settings = worker.settings.model_copy(update={"ingest_soft_time_limit_s": 2.0})
    worker.get_context().embedder.delay_s = 60  # an embedder that would hold the worker
    started = time.monotonic()
    job = _run(worker, _queue(worker, DATA / "en_report.txt", "txt"))
    assert time.monotonic() - started < 30
    assert (job.stage, job.error_type) == ("failed", "ingestion_timeout")
    assert job.error == ("ingestion took longer than 2 s (ZHIKU_INGEST_SOFT_TIME_LIMIT_S); stopped")
    worker.get_context().embedder.delay_s = 0
    assert _run(worker, _queue(worker, DATA / "en_report.txt", "txt")).stage == "done"
