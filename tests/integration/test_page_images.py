"""A PDF page as a PNG for a citation's preview: scoped like the document's knowledge base."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import httpx
import pytest
from PIL import Image

from services.common.db import make_engine, make_sessionmaker
from services.common.models import Document, KnowledgeBase
from services.common.schemas import ErrorPublic
from services.evaluation.parse_corpus import CJK_FONT, write_corpus
from tests.integration.gateway_stack import Stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CJK_FONT.exists(), reason="fonts-noto-cjk missing"),
]


def _add_pdf(stack: Stack, kb_name: str, path: Path) -> int:
    """A ready PDF document row in ``kb_name`` whose stored file is ``path``."""
    sessions = make_sessionmaker(make_engine(stack.settings.sqlalchemy_url))
    with sessions() as session:
        kb = session.query(KnowledgeBase).filter_by(name=kb_name).one()
        doc = Document(
            knowledge_base_id=kb.id, filename=path.name, content_type="application/pdf",
            size_bytes=path.stat().st_size, sha256=uuid.uuid4().hex * 2,
            storage_path=str(path), status="ready", chunk_count=1,
        )  # fmt: skip
        session.add(doc)
        session.commit()
        return doc.id


def test_a_page_is_a_bounded_png_for_a_scoped_key_only(stack: Stack, tmp_path: Path) -> None:
    [(_case, pdf)] = write_corpus(tmp_path, {"table.pdf"})
    mine, theirs = _add_pdf(stack, stack.alpha, pdf), _add_pdf(stack, stack.beta, pdf)
    headers = {"Authorization": f"Bearer {stack.alpha_key}"}
    with httpx.Client(base_url=stack.gateway, headers=headers, timeout=60) as client:
        plain = client.get(f"/api/v1/documents/{mine}/pages/1.png")
        assert plain.status_code == 200, plain.text
        assert plain.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(plain.content))
        assert max(image.size) <= 1600 and min(image.size) > 500
        marked = client.get(
            f"/api/v1/documents/{mine}/pages/1.png", params={"highlight": "活性炭滤芯"}
        )
        assert marked.status_code == 200 and marked.content != plain.content
        # Another knowledge base's document does not exist for this key.
        other = client.get(f"/api/v1/documents/{theirs}/pages/1.png")
        assert other.status_code == 404
        assert ErrorPublic.model_validate(other.json()).error_type == "not_found"
        past_end = client.get(f"/api/v1/documents/{mine}/pages/9.png")
        assert past_end.status_code == 404
        assert "page 9" in ErrorPublic.model_validate(past_end.json()).error
        zero = client.get(f"/api/v1/documents/{mine}/pages/0.png")
        assert zero.status_code == 422
        assert ErrorPublic.model_validate(zero.json()).error_type == "validation_error"


def test_a_page_the_child_cannot_render_is_an_error_with_its_reason(
    stack: Stack, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n" + b"\x00" * 64)
    [(_case, pdf)] = write_corpus(tmp_path, {"zh_text.pdf"})
    bad, good = _add_pdf(stack, stack.alpha, broken), _add_pdf(stack, stack.alpha, pdf)
    headers = {"Authorization": f"Bearer {stack.alpha_key}"}
    with httpx.Client(base_url=stack.gateway, headers=headers, timeout=60) as client:
        failed = client.get(f"/api/v1/documents/{bad}/pages/1.png")
        assert failed.status_code == 422
        error = ErrorPublic.model_validate(failed.json())
        assert error.error_type == "document_parse_error" and "could not open" in error.error
        limits = stack.settings.parsing
        saved, limits.page_render_timeout_s = limits.page_render_timeout_s, 0.01
        try:
            slow = client.get(f"/api/v1/documents/{good}/pages/1.png")
        finally:
            limits.page_render_timeout_s = saved
        assert slow.status_code == 422
        error = ErrorPublic.model_validate(slow.json())
        assert error.error_type == "document_parse_error"
        assert "PAGE_RENDER_TIMEOUT_S" in error.error
        assert client.get(f"/api/v1/documents/{good}/pages/1.png").status_code == 200
