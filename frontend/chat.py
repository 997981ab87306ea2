"""The chat page: a saved conversation with streamed answers, sources, copy and feedback."""

from __future__ import annotations

from collections.abc import Iterator

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from frontend import state
from frontend.citations import render_actions, render_reading, render_sources
from frontend.i18n import t
from frontend.notices import show_error
from frontend.safe_markdown import without_images
from frontend.sidebar import render_sidebar
from services.client import GatewayClient, GatewayError
from services.common.conversation_schemas import ConversationMessagePublic
from services.common.schemas import ChatResponse, SourcesEvent, StepEvent


def chat_page() -> None:
    """Sidebar, then the open conversation and the question box."""
    client = state.get_client()
    kb = render_sidebar(client)
    messages = _load_messages(client) if kb else []
    if kb and not messages:
        st.caption(t("welcome"))
    for message in messages:
        _render_message(client, kb or "", message)
    question = st.chat_input(
        t("placeholder") if kb else t("placeholder_no_kb"), disabled=kb is None
    )
    if question and kb:
        _ask(client, kb, question)


def _load_messages(client: GatewayClient) -> list[ConversationMessagePublic]:
    conversation_id = state.current_conversation()
    if conversation_id is None:
        return []
    try:
        return client.get_conversation(conversation_id).messages
    except GatewayError as err:
        if err.status_code == 404:  # deleted meanwhile (another tab): start afresh
            state.set_conversation(None)
            return []
        show_error(err, client.base_url)
        return []


def _render_message(client: GatewayClient, kb: str, message: ConversationMessagePublic) -> None:
    with st.chat_message(message.role):
        st.markdown(without_images(message.content))
        if message.role != "assistant":
            return
        for step in state.steps_of(message.id):
            render_step(st.container(), step)
        if not message.grounded:
            st.caption(t("not_grounded"))
        render_sources(client, kb, str(message.id), message.citations)
        render_actions(client, kb, message)


def _ask(client: GatewayClient, kb: str, question: str) -> None:
    """Open a conversation on the first question, stream the answer, then redraw from storage."""
    with st.chat_message("user"):
        st.markdown(without_images(question))
    conversation_id = state.current_conversation()
    try:
        if conversation_id is None:
            conversation_id = client.create_conversation(kb, question).id
            state.set_conversation(conversation_id)
    except GatewayError as err:
        show_error(err, client.base_url)
        return
    with st.chat_message("assistant"):
        reply = _stream_answer(client, kb, question, conversation_id)
    if reply is not None:
        st.rerun()  # the stored turn now carries its ids: chips and feedback come with it


def _stream_answer(
    client: GatewayClient, kb: str, question: str, conversation_id: int
) -> ChatResponse | None:
    final: list[ChatResponse] = []
    options = state.chat_options(conversation_id)
    searches = st.container()  # a deep answer's searches, each folded, as they are done
    reading = st.container()  # above the answer: the passages, shown before its first token
    steps: list[StepEvent] = []

    def tokens() -> Iterator[str]:
        messages = [{"role": "user", "content": question}]
        fold = None
        for item in client.chat_stream(kb, messages, options):
            if isinstance(item, StepEvent):
                steps.append(item)
                render_step(searches, item)
            elif isinstance(item, SourcesEvent):
                fold = render_reading(reading, item)
            elif isinstance(item, ChatResponse):
                final.append(item)
            else:
                if fold is not None:  # the answer has begun: the passages fold away
                    fold()
                    fold = None
                yield item

    try:
        with st.spinner(t("thinking")):
            _write_safely(tokens())
    except GatewayError as err:
        show_error(err, client.base_url)
        return None
    if final:
        state.remember_steps(final[0].message_id, steps)
    return final[0] if final else None


def render_step(where: DeltaGenerator, step: StepEvent) -> None:
    """One search of a deep answer, folded: its query and knowledge base; inside, what it found."""
    title = t("step", n=step.step, query=step.query, kb=step.knowledge_base)
    with where.expander(title, icon=":material/search:"):
        if not step.hits:
            st.caption(t("step_none"))
        for hit in step.hits:
            st.markdown(f"- {without_images(hit.document_name)} · `{hit.score:.3f}`")


def _write_safely(tokens: Iterator[str]) -> None:
    """Stream the answer, each redraw without images (one may be complete only tokens later)."""
    slot = st.empty()
    text = ""
    for token in tokens:
        text += token
        slot.markdown(without_images(text))
