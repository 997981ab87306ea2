"""Per-session state of the web app: the gateway client, the chosen knowledge base, chat history."""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from services.common.client import DEFAULT_GATEWAY_URL, GatewayClient

CLIENT_KEY = "client"
KB_KEY = "knowledge_base"
HISTORY_KEY = "history"


def gateway_url() -> str:
    """The gateway address, from ``ZHIKU_GATEWAY_URL``."""
    return os.environ.get("ZHIKU_GATEWAY_URL", DEFAULT_GATEWAY_URL)


def get_client() -> GatewayClient:
    """The session's gateway client; a client already placed in the session state is kept."""
    client = st.session_state.get(CLIENT_KEY)
    if not isinstance(client, GatewayClient):
        client = GatewayClient(gateway_url(), api_key=os.environ.get("ZHIKU_API_KEY") or None)
        st.session_state[CLIENT_KEY] = client
    return client


def current_kb() -> str | None:
    """The knowledge base picked in the sidebar, if any."""
    value = st.session_state.get(KB_KEY)
    return value if isinstance(value, str) and value else None


def set_kb(name: str | None) -> None:
    """Pick a knowledge base."""
    st.session_state[KB_KEY] = name


def history(kb: str) -> list[dict[str, Any]]:
    """Chat turns of one knowledge base: dicts with role, content and (assistant) citations."""
    all_history: dict[str, list[dict[str, Any]]] = st.session_state.setdefault(HISTORY_KEY, {})
    return all_history.setdefault(kb, [])
