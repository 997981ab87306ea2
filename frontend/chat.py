"""Main area: the chat with streamed answers and their sources."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import streamlit as st

from frontend import state
from frontend.notices import show_error
from services.common.client import GatewayClient, GatewayError
from services.common.schemas import ChatResponse, Citation

# Enough turns for follow-up questions without filling the model's context.
HISTORY_TURNS = 6
PLACEHOLDER = "向知识库提问… / Ask the knowledge base…"
PLACEHOLDER_NO_KB = "请先选择或创建知识库 / Pick or create a knowledge base first"


def render_chat(client: GatewayClient, kb: str | None) -> None:
    """Draw the conversation of the picked knowledge base and answer a new question."""
    turns = state.history(kb) if kb else []
    for turn in turns:
        with st.chat_message(turn["role"]):
            st.markdown(turn["content"])
            _render_sources(turn.get("citations", []))
    question = st.chat_input(PLACEHOLDER if kb else PLACEHOLDER_NO_KB, disabled=kb is None)
    if not question or kb is None:
        return
    with st.chat_message("user"):
        st.markdown(question)
    turns.append({"role": "user", "content": question})
    with st.chat_message("assistant"):
        reply = _stream_answer(client, kb, turns)
    if reply is None:
        turns.pop()  # keep the question out of the history so it can simply be asked again
        return
    turns.append({"role": "assistant", "content": reply.answer, "citations": reply.citations})


def wire_messages(turns: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The last turns as chat messages for the gateway (citations left out)."""
    recent = turns[-HISTORY_TURNS:]
    return [{"role": turn["role"], "content": turn["content"]} for turn in recent]


def _stream_answer(
    client: GatewayClient, kb: str, turns: list[dict[str, Any]]
) -> ChatResponse | None:
    final: list[ChatResponse] = []

    def tokens() -> Iterator[str]:
        for item in client.chat_stream(kb, wire_messages(turns)):
            if isinstance(item, ChatResponse):
                final.append(item)
            else:
                yield item

    try:
        with st.spinner("检索与生成中 / Retrieving and generating…"):
            streamed = st.write_stream(tokens())
    except GatewayError as err:
        show_error(err, client.base_url)
        return None
    if not final:
        return None
    reply = final[0]
    if not isinstance(streamed, str) or streamed.strip() != reply.answer.strip():
        # The gateway may replace the streamed draft (e.g. an ungrounded answer): show the final.
        st.markdown(reply.answer)
    if not reply.grounded:
        st.caption("文档中未找到依据 / Not found in the documents")
    _render_sources(reply.citations)
    return reply


def format_citation(citation: Citation) -> str:
    """One source as Markdown: ``[n] document`` and the quoted text."""
    quote = "\n".join(f"> {line}" for line in citation.quote.strip().splitlines())
    return f"**[{citation.index}] {citation.document_name}**\n\n{quote}"


def _render_sources(citations: list[Citation]) -> None:
    if not citations:
        return
    with st.expander(f"引用 / Sources ({len(citations)})"):
        for citation in citations:
            st.markdown(format_citation(citation))
