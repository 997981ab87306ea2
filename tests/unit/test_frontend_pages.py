"""The knowledge bases page, the retrieval lab, the evaluation dashboard and the language switch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from frontend.evaluation import tables
from frontend.library import human_size
from tests.unit.frontend_gateway import FakeGateway, job

APP = str(Path(__file__).resolve().parents[2] / "frontend" / "app.py")


def _library_script() -> None:
    from frontend.library import library_page

    library_page()


def _lab_script() -> None:
    from frontend.lab import lab_page

    lab_page()


def _evaluation_script() -> None:
    from frontend.evaluation import evaluation_page

    evaluation_page()


def run_page(script: object, gateway: FakeGateway | None = None, lang: str = "en") -> AppTest:
    at = AppTest.from_function(script, default_timeout=30)  # type: ignore[arg-type]
    at.session_state["lang"] = lang
    if gateway is not None:
        at.session_state["client"] = gateway.client()
    return at.run()


def test_jobs_show_progress_stage_and_failure_reason_with_retry() -> None:
    gateway = FakeGateway(
        jobs=[job("j1", "embedding", 0.6), job("j2", "failed", 0.3, "could not read PDF: cut")]
    )
    at = run_page(_library_script, gateway)
    assert not at.exception
    bars = [p for p in at.get("progress")]
    assert any("j1.pdf · embedding · 60%" in str(p.proto.text) for p in bars)
    assert any("could not read PDF: cut" in e.value for e in at.error)
    at.button(key="retry-j2").click().run()
    assert ("POST", "/api/v1/jobs/j2/retry", None) in gateway.requests


def test_documents_list_size_chunks_and_date_and_delete() -> None:
    gateway = FakeGateway()
    at = run_page(_library_script, gateway)
    assert any("指南.pdf" in md.value for md in at.markdown)
    assert any(c.value == "2.0 KB · 4 chunks · 2026-01-02 03:04" for c in at.caption)
    at.button(key="delete-doc-9").click().run()
    assert ("DELETE", "/api/v1/knowledge-bases/手册/documents/9", None) in gateway.requests


def test_rename_and_delete_a_knowledge_base() -> None:
    gateway = FakeGateway()
    at = run_page(_library_script, gateway)
    at.text_input(key="kb-rename-手册").set_value("说明书").run()
    at.button[[b.label for b in at.button].index("Rename")].click().run()
    assert not at.exception
    assert ("PATCH", "/api/v1/knowledge-bases/手册", {"name": "说明书"}) in gateway.requests
    at.checkbox(key="kb-confirm-说明书").check().run()
    at.button[[b.label for b in at.button].index("Delete")].click().run()
    assert ("DELETE", "/api/v1/knowledge-bases/说明书", None) in gateway.requests
    assert "No knowledge base yet: create one." in [c.value for c in at.caption]


def test_create_a_knowledge_base() -> None:
    gateway = FakeGateway(kbs=[])
    at = run_page(_library_script, gateway, lang="zh")
    at.text_input[0].set_value("新库")
    at.button[0].click().run()
    created = [b for m, p, b in gateway.requests if m == "POST" and p == "/api/v1/knowledge-bases"]
    assert created == [{"name": "新库", "description": ""}]


def test_lab_shows_every_score() -> None:
    gateway = FakeGateway()
    at = run_page(_lab_script, gateway)
    at.text_input[0].set_value("支持什么格式")
    at.slider[0].set_value(4)
    at.button[0].click().run()
    assert not at.exception
    search = next(b for m, p, b in gateway.requests if p == "/api/v1/search")
    assert search["query"] == "支持什么格式" and search["top_k"] == 4
    assert search["mode"] == "hybrid" and search["rerank"] is False
    frame = at.dataframe[0].value
    assert list(frame.columns)[:6] == ["Rank", "Document", "Chunk", "Score", "Dense", "Keyword"]
    assert frame.iloc[0]["Dense"] == 0.71 and frame.iloc[0]["Keyword"] == 3.2


def test_evaluation_without_results_says_how_to_make_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHIKU_BENCH_RESULTS", str(tmp_path))
    at = run_page(_evaluation_script)
    assert not at.exception
    assert "No results yet" in at.info[0].value and str(tmp_path) in at.info[0].value


def test_evaluation_shows_tables_and_a_recall_chart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = {
        "dataset": "zh-faq",
        "modes": [
            {"mode": "dense", "recall@5": 0.8, "latency_ms_p50": 12.0},
            {"mode": "hybrid", "recall@5": 0.9, "latency_ms_p50": 15.0},
        ],
    }
    (tmp_path / "retrieval.json").write_text(json.dumps(results))
    (tmp_path / "broken.json").write_text("{not json")
    monkeypatch.setenv("ZHIKU_BENCH_RESULTS", str(tmp_path))
    at = run_page(_evaluation_script)
    assert not at.exception
    assert list(at.dataframe[0].value["mode"]) == ["dense", "hybrid"]
    assert len(at.get("arrow_vega_lite_chart")) + len(at.get("vega_lite_chart")) >= 1
    assert any("broken.json" in w.value for w in at.warning)


def test_tables_find_records_and_keyed_records() -> None:
    found = dict(tables({"by_mode": {"dense": {"recall": 0.5}, "keyword": {"recall": 0.4}}}))
    assert list(found["by_mode"]["name"]) == ["dense", "keyword"]
    assert tables({"note": "x"}) == []
    assert human_size(512) == "512 B" and human_size(3 * 2**20) == "3.0 MB"


def test_the_interface_follows_the_language_switch() -> None:
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["client"] = FakeGateway().client()
    at.run()
    assert at.caption[0].value == "文档知识问答"  # no browser locale in tests: Chinese
    at.session_state["lang"] = "en"
    at.run()
    assert at.caption[0].value == "Ask questions about your documents"
    assert at.chat_input[0].placeholder == "Ask the knowledge base…"
