"""The zhiku web app: ``streamlit run frontend/app.py``; it talks only to the gateway."""

from __future__ import annotations

import streamlit as st

from frontend import state
from frontend.chat import chat_page
from frontend.evaluation import evaluation_page
from frontend.i18n import language_picker, t
from frontend.lab import lab_page
from frontend.library import library_page
from frontend.login import logged_in, logout_button
from frontend.notices import show_error, show_not_ready, show_unreachable
from services.client import GatewayError

TITLE = "知库 Zhiku"
STYLE = """<style>
.zhiku-chunk { line-height: 1.7; }
.zhiku-chunk mark { background: #ffe08a; padding: 0 2px; border-radius: 3px; }
</style>"""


def gateway_ok() -> bool:
    """Check the gateway; say what is wrong and what to do when it cannot serve."""
    client = state.get_client()
    try:
        health = client.ready()
    except GatewayError as err:
        if err.error_type == "unreachable":
            show_unreachable(client.base_url, err.error)
        else:
            show_error(err, client.base_url)
        return False
    if health.status != "ok":
        show_not_ready(health)
    return True


def pages() -> list[st.Page]:
    """The app's pages, titled in the current language."""
    return [
        st.Page(
            chat_page, title=t("page_chat"), icon=":material/chat:", url_path="chat", default=True
        ),
        st.Page(
            library_page, title=t("page_library"), icon=":material/folder_open:", url_path="library"
        ),
        st.Page(lab_page, title=t("page_lab"), icon=":material/science:", url_path="lab"),
        st.Page(
            evaluation_page,
            title=t("page_eval"),
            icon=":material/monitoring:",
            url_path="evaluation",
        ),
    ]


def main() -> None:
    """Draw the app: language switch, navigation, gateway state, login, then the picked page."""
    st.set_page_config(page_title=TITLE, page_icon=":material/menu_book:", layout="wide")
    st.markdown(STYLE, unsafe_allow_html=True)
    with st.sidebar:
        language_picker()
        logout_button()
    page = st.navigation(pages())
    st.title(TITLE)
    st.caption(t("tagline"))
    if not gateway_ok() or not logged_in(state.get_client()):
        st.stop()
    page.run()


# Streamlit runs this file as __main__; importing it (tests, tools) draws nothing.
if __name__ == "__main__":
    main()
