"""Per-session state of the web app: the login, the gateway client, the knowledge base, the open
chat."""

from __future__ import annotations

import os

import streamlit as st

from services.client import DEFAULT_GATEWAY_URL, ChatOptions, GatewayClient
from services.common.schemas import SearchMode, StepEvent
from services.common.web_sessions import LoginPublic

CLIENT_KEY = "client"
LOGIN_KEY = "web_login"
KB_KEY = "knowledge_base"
CONVERSATION_KEY = "conversation"
# Widget keys of the chat settings (kept across page switches by persist_state="session").
MODE_KEY, TOP_K_KEY, TEMPERATURE_KEY = "set_mode", "set_top_k", "set_temperature"
MAX_TOKENS_KEY, SYSTEM_PROMPT_KEY = "set_max_tokens", "set_system_prompt"
DEEP_KEY = "set_deep"
STEPS_KEY = "deep_steps"  # message id → the searches of its deep answer, shown with it
DEFAULT_SETTINGS: dict[str, object] = {
    MODE_KEY: "hybrid",
    TOP_K_KEY: 5,
    TEMPERATURE_KEY: 0.2,
    MAX_TOKENS_KEY: 512,
    SYSTEM_PROMPT_KEY: "",
    DEEP_KEY: False,
}
MODES: tuple[SearchMode, ...] = ("hybrid", "dense", "keyword")


def gateway_url() -> str:
    """The gateway address, from ``ZHIKU_GATEWAY_URL``."""
    return os.environ.get("ZHIKU_GATEWAY_URL", DEFAULT_GATEWAY_URL)


def get_client() -> GatewayClient:
    """The session's gateway client; a client already placed in the session state is kept.

    A logged-in user's client sends the user's session token; without a login, the client sends
    ``ZHIKU_API_KEY`` if set (a gateway with no web users), else nothing (keyless mode).
    """
    client = st.session_state.get(CLIENT_KEY)
    if not isinstance(client, GatewayClient):
        login = current_login()
        token = login.token if login else os.environ.get("ZHIKU_API_KEY") or None
        client = GatewayClient(gateway_url(), api_key=token)
        st.session_state[CLIENT_KEY] = client
    return client


def current_login() -> LoginPublic | None:
    """The web user logged in in this browser session, if any."""
    value = st.session_state.get(LOGIN_KEY)
    return value if isinstance(value, LoginPublic) else None


def set_login(login: LoginPublic | None) -> None:
    """Log in (or out): the client sends the new token, and nothing of the last user stays."""
    token = login.token if login else os.environ.get("ZHIKU_API_KEY") or None
    previous = get_client()
    st.session_state[CLIENT_KEY] = previous.with_api_key(token)
    previous.close()
    set_conversation(None)
    st.session_state[KB_KEY] = None
    st.session_state[LOGIN_KEY] = login


def current_kb() -> str | None:
    """The knowledge base picked, if any."""
    value = st.session_state.get(KB_KEY)
    return value if isinstance(value, str) and value else None


def set_kb(name: str | None) -> None:
    """Pick a knowledge base; the open conversation belongs to the previous one, so it closes."""
    if name != current_kb():
        set_conversation(None)
    st.session_state[KB_KEY] = name


def current_conversation() -> int | None:
    """The saved conversation open in the chat, if any."""
    value = st.session_state.get(CONVERSATION_KEY)
    return value if isinstance(value, int) else None


def set_conversation(conversation_id: int | None) -> None:
    """Open a saved conversation (None: a new chat)."""
    st.session_state[CONVERSATION_KEY] = conversation_id


def init_settings() -> None:
    """Sensible defaults for the chat settings, set once per session."""
    for key, value in DEFAULT_SETTINGS.items():
        st.session_state.setdefault(key, value)


def chat_options(conversation_id: int | None) -> ChatOptions:
    """The per-request chat settings from the sidebar."""
    init_settings()
    mode = st.session_state[MODE_KEY]
    prompt = str(st.session_state[SYSTEM_PROMPT_KEY] or "").strip()
    return ChatOptions(
        top_k=int(st.session_state[TOP_K_KEY]),
        mode=mode if mode in MODES else None,
        temperature=float(st.session_state[TEMPERATURE_KEY]),
        max_tokens=int(st.session_state[MAX_TOKENS_KEY]),
        system_prompt=prompt or None,
        answer_mode="deep" if st.session_state[DEEP_KEY] else None,
        conversation_id=conversation_id,
    )


def remember_steps(message_id: int | None, steps: list[StepEvent]) -> None:
    """Keep a deep answer's searches for this session (they are not stored with the turn)."""
    if message_id is not None and steps:
        st.session_state.setdefault(STEPS_KEY, {})[message_id] = steps


def steps_of(message_id: int | None) -> list[StepEvent]:
    """The searches of a deep answer given in this session; none for the others."""
    saved: dict[int, list[StepEvent]] = st.session_state.get(STEPS_KEY, {})
    return saved.get(message_id, []) if message_id is not None else []
