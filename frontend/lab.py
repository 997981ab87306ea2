"""The retrieval lab: what a query retrieves in each mode, with every score."""

from __future__ import annotations

from typing import Any

import streamlit as st

from frontend import state
from frontend.i18n import t
from frontend.notices import show_error
from frontend.safe_markdown import without_images
from frontend.sidebar import pick_kb
from services.client import GatewayError
from services.common.schemas import ChunkHit, SearchMode

RESULT_KEY = "lab_result"
PREVIEW_CHARS = 120


def hit_rows(hits: list[ChunkHit]) -> list[dict[str, Any]]:
    """Ranked hits as table rows with translated column names."""
    return [
        {
            t("col_rank"): rank,
            t("col_doc"): hit.document_name,
            t("col_pos"): hit.position + 1,
            t("col_score"): round(hit.score, 4),
            t("col_dense"): None if hit.dense_score is None else round(hit.dense_score, 4),
            t("col_keyword"): None if hit.keyword_score is None else round(hit.keyword_score, 4),
            t("col_text"): hit.text[:PREVIEW_CHARS].replace("\n", " "),
        }
        for rank, hit in enumerate(hits, start=1)
    ]


def lab_page() -> None:
    """A query form and the ranked chunks it retrieves."""
    client = state.get_client()
    st.caption(t("lab_intro"))
    kb = pick_kb(client, where="lab")
    if kb is None:
        return
    with st.form("lab"):
        query = st.text_input(t("query"))
        mode_col, k_col, rerank_col = st.columns([2, 2, 1], vertical_alignment="bottom")
        mode: SearchMode = (
            mode_col.segmented_control(
                t("mode"), state.MODES, format_func=lambda m: t(f"mode_{m}"), default="hybrid"
            )
            or "hybrid"
        )
        top_k = k_col.slider("top-k", 1, 30, 8)
        rerank = rerank_col.checkbox(t("rerank"))
        submitted = st.form_submit_button(t("search"), type="primary", icon=":material/search:")
    if submitted and query.strip():
        try:
            result = client.search(kb, query.strip(), top_k=top_k, mode=mode, rerank=rerank)
        except GatewayError as err:
            show_error(err, client.base_url)
            return
        st.session_state[RESULT_KEY] = (kb, result)
    _show_result(kb)


def _show_result(kb: str) -> None:
    stored = st.session_state.get(RESULT_KEY)
    if not stored or stored[0] != kb:
        return
    result = stored[1]
    if not result.hits:
        st.info(t("no_hits"))
        return
    st.dataframe(hit_rows(result.hits), hide_index=True, use_container_width=True)
    for rank, hit in enumerate(result.hits, start=1):
        label = f"{rank}. {without_images(hit.document_name)} · {t('col_pos')} {hit.position + 1}"
        with st.expander(label):
            st.text(hit.text)
