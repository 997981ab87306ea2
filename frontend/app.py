"""The zhiku web chat: ``streamlit run frontend/app.py``; it talks only to the gateway."""

from __future__ import annotations

import streamlit as st

from frontend import state
from frontend.chat import render_chat
from frontend.notices import show_not_ready, show_unreachable
from frontend.sidebar import render_sidebar
from services.common.client import GatewayError

TITLE = "知库 Zhiku"


def main() -> None:
    """Draw the page: gateway state, sidebar, chat."""
    st.set_page_config(page_title=TITLE, page_icon=":material/menu_book:", layout="wide")
    st.title(TITLE)
    st.caption("文档知识问答 / Ask questions about your documents")
    client = state.get_client()
    try:
        health = client.ready()
    except GatewayError as err:
        show_unreachable(client.base_url, err.error if err.error_type != "unreachable" else "")
        st.stop()
    if health.status != "ok":
        show_not_ready(health)
    kb = render_sidebar(client)
    render_chat(client, kb)


# Streamlit runs this file as __main__; importing it (tests, tools) draws nothing.
if __name__ == "__main__":
    main()
