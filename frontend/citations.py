"""Under each answer: numbered source chips that open the cited passage, copy, thumbs up/down."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from frontend.i18n import t
from frontend.notices import show_error
from frontend.safe_markdown import without_images
from services.client import GatewayClient, GatewayError
from services.common.chunks import ChunkLocation
from services.common.conversation_schemas import ConversationMessagePublic, FeedbackCreate
from services.common.schemas import Citation, SourcesEvent

FEEDBACK_SENT_KEY = "feedback_sent"


def highlight(text: str, quote: str) -> str:
    """The chunk as HTML with the quoted span marked; whitespace may differ between the two."""
    text, quote = without_images(text), without_images(quote)
    words = quote.split()
    if not words:
        return _paragraphs(html.escape(text))
    pattern = r"\s*".join(re.escape(word) for word in words)
    match = re.search(pattern, text)
    if match is None:
        return _paragraphs(html.escape(text))
    start, end = match.span()
    marked = (
        html.escape(text[:start])
        + "<mark>"
        + html.escape(text[start:end])
        + "</mark>"
        + html.escape(text[end:])
    )
    return _paragraphs(marked)


def _paragraphs(escaped: str) -> str:
    return escaped.replace("\n", "<br>")


def chip_label(citation: Citation) -> str:
    """A source chip: ``[n] document``."""
    return without_images(f"[{citation.index}] {citation.document_name}")


def render_reading(slot: DeltaGenerator, event: SourcesEvent) -> Callable[[], None] | None:
    """The passages being read, at once, before the first token; returns how to fold them."""
    if not event.sources:
        return None
    count = len(event.sources)
    box = slot.status(t("reading", n=count), expanded=True)
    for passage in event.sources:
        box.caption(f"**{chip_label(passage)}** · {without_images(passage.quote)}")

    def fold() -> None:
        box.update(label=t("read", n=count), state="complete", expanded=False)

    return fold


def render_sources(client: GatewayClient, kb: str, key: str, citations: list[Citation]) -> None:
    """One chip per citation; a click opens the passage in a dialog."""
    if not citations:
        return
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        st.caption(f"{t('sources')}:", width="content")
        for citation in citations:
            if st.button(
                chip_label(citation),
                key=f"chip-{key}-{citation.index}",
                icon=":material/description:",
            ):
                st.dialog(t("source_title"), width="large")(_source_dialog)(client, kb, citation)


def _source_dialog(client: GatewayClient, kb: str, citation: Citation) -> None:
    try:
        chunk = client.get_chunk(kb, citation.chunk_id)
    except GatewayError as err:
        show_error(err, client.base_url)
        return
    st.markdown(f"**[{citation.index}]**")
    st.caption(
        t(
            "source_where",
            doc=without_images(chunk.document_name),
            pos=chunk.position + 1,
            count=max(chunk.chunk_count, chunk.position + 1),
        )
    )
    where = location_label(chunk.location)
    if where:
        st.caption(where)
    if chunk.location is not None and chunk.location.page is not None:
        _page_preview(client, chunk.document_id, chunk.location.page, citation.quote)
    if chunk.location is not None and chunk.location.rows is not None:
        rows = table_rows(chunk.text)
        if rows:
            st.dataframe([dict(zip(rows[0], row, strict=False)) for row in rows[1:]])
    st.markdown(
        f'<div class="zhiku-chunk">{highlight(chunk.text, citation.quote)}</div>',
        unsafe_allow_html=True,
    )


_TABLE_SEPARATOR = re.compile(r"\|(?:\s*:?-{3,}:?\s*\|)+")


def location_label(location: ChunkLocation | None) -> str:
    """Where a chunk was read, in the reader's language: page, slide, or sheet and rows."""
    if location is None:
        return ""
    parts = []
    if location.page is not None:
        parts.append(t("where_page", n=location.page))
    if location.slide is not None:
        parts.append(t("where_slide", n=location.slide))
    if location.sheet:
        parts.append(t("where_sheet", sheet=location.sheet))
    if location.rows:
        parts.append(t("where_rows", rows=location.rows))
    return " · ".join(parts)


def table_rows(text: str) -> list[list[str]]:
    """The Markdown table rows of a chunk (header first), the separator row left out."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("|") and not _TABLE_SEPARATOR.fullmatch(line)
    ]
    return rows if len(rows) > 1 else []


def _page_preview(client: GatewayClient, document_id: int, page: int, quote: str) -> None:
    try:
        png = client.page_image(document_id, page, quote)
    except GatewayError as err:
        show_error(err, client.base_url)
        return
    st.image(png, caption=t("where_page", n=page))


def render_actions(client: GatewayClient, kb: str, message: ConversationMessagePublic) -> None:
    """Copy, thumbs up/down and an optional comment for one stored answer."""
    copy_col, rate_col, comment_col = st.columns([1, 1, 6], vertical_alignment="center")
    with copy_col.popover("", icon=":material/content_copy:", help=t("copy")):
        st.caption(t("copy_hint"))
        st.code(message.content, language=None, wrap_lines=True)
    with rate_col:
        rating = st.feedback("thumbs", key=f"thumbs-{message.id}")
    if rating is None:
        return
    sent: dict[int, int] = st.session_state.setdefault(FEEDBACK_SENT_KEY, {})
    value = 1 if rating == 1 else -1
    if sent.get(message.id) != value:
        _send(client, kb, message, value, "")
        sent[message.id] = value
    with comment_col.form(f"comment-{message.id}", border=False, clear_on_submit=True):
        text_col, send_col = st.columns([5, 1], vertical_alignment="bottom")
        comment = text_col.text_input(
            t("comment"),
            label_visibility="collapsed",
            placeholder=t("comment"),
            key=f"comment-text-{message.id}",
        )
        if send_col.form_submit_button(t("send")) and comment.strip():
            _send(client, kb, message, value, comment)
            st.toast(t("thanks"), icon=":material/thumb_up:")


def _send(
    client: GatewayClient, kb: str, message: ConversationMessagePublic, rating: int, comment: str
) -> None:
    body = FeedbackCreate(
        message_id=message.id,
        rating=1 if rating > 0 else -1,
        comment=comment,
        knowledge_base=kb,
        answer=message.content,
    )
    try:
        client.send_feedback(body)
    except GatewayError as err:
        show_error(err, client.base_url)
