"""The chat page's sidebar: knowledge base, past chats (open, rename, delete), chat settings."""

from __future__ import annotations

import streamlit as st

from frontend import state
from frontend.i18n import t
from frontend.notices import show_error, show_rows
from services.client import GatewayClient, GatewayError
from services.common.conversation_schemas import ConversationPublic


def pick_kb(client: GatewayClient, where: object = None) -> str | None:
    """A select box of the knowledge bases; the one picked (None when there is none)."""
    try:
        names = [kb.name for kb in client.list_knowledge_bases().data]
    except GatewayError as err:
        show_error(err, client.base_url)
        return None
    if not names:
        st.caption(t("kb_none"))
        state.set_kb(None)
        return None
    # A link may name the knowledge base: ?kb=name (used until the user picks another).
    current = state.current_kb() or st.query_params.get("kb")
    index = names.index(current) if current in names else 0
    picked = st.selectbox(t("kb"), names, index=index, key=f"kb-pick-{where or 'chat'}")
    state.set_kb(picked)
    return picked


def render_sidebar(client: GatewayClient) -> str | None:
    """Draw the chat sidebar and return the knowledge base picked."""
    with st.sidebar:
        kb = pick_kb(client)
        if kb is None:
            st.info(t("kb_go_create"), icon=":material/arrow_upward:")
            return None
        if st.button(t("new_chat"), icon=":material/add_comment:", use_container_width=True):
            state.set_conversation(None)
        st.toggle(t("deep"), key=state.DEEP_KEY, help=t("deep_help"), persist_state="session")
        _settings()
        st.subheader(t("history"))
        _conversation_list(client, kb)
    return kb


def _conversation_list(client: GatewayClient, kb: str) -> None:
    show_rows(
        client,
        lambda: client.list_conversations(kb).data,
        lambda conv: _conversation_row(client, conv),
        "history_none",
    )


def _conversation_row(client: GatewayClient, conv: ConversationPublic) -> None:
    active = conv.id == state.current_conversation()
    title_col, menu_col = st.columns([5, 1], vertical_alignment="center")
    if title_col.button(
        conv.title,
        key=f"conv-{conv.id}",
        type="primary" if active else "tertiary",
        icon=":material/chat:",
        use_container_width=True,
    ):
        state.set_conversation(conv.id)
        st.rerun()
    with menu_col.popover("", icon=":material/more_vert:"):
        title = st.text_input(t("title"), value=conv.title, key=f"conv-title-{conv.id}")
        rename_col, delete_col = st.columns(2)
        try:
            if rename_col.button(t("rename"), key=f"conv-rename-{conv.id}"):
                client.rename_conversation(conv.id, title)
                st.rerun()
            if delete_col.button(t("delete"), key=f"conv-delete-{conv.id}", type="primary"):
                client.delete_conversation(conv.id)
                if active:
                    state.set_conversation(None)
                st.rerun()
        except GatewayError as err:
            show_error(err, client.base_url)


def _settings() -> None:
    state.init_settings()
    with st.expander(t("settings"), icon=":material/tune:"):
        st.selectbox(
            t("mode"),
            state.MODES,
            format_func=lambda mode: t(f"mode_{mode}"),
            key=state.MODE_KEY,
            persist_state="session",
        )
        st.slider(t("top_k"), 1, 20, key=state.TOP_K_KEY, persist_state="session")
        st.slider(
            t("temperature"),
            0.0,
            1.5,
            step=0.05,
            key=state.TEMPERATURE_KEY,
            persist_state="session",
        )
        st.number_input(
            t("max_tokens"), 32, 4096, step=32, key=state.MAX_TOKENS_KEY, persist_state="session"
        )
        st.text_area(t("system_prompt"), key=state.SYSTEM_PROMPT_KEY, persist_state="session")
