"""The login form, shown while the gateway has web users and nobody is logged in here."""

from __future__ import annotations

import streamlit as st

from frontend import state
from frontend.i18n import t
from frontend.notices import show_error
from services.client import GatewayClient, GatewayError


def logged_in(client: GatewayClient) -> bool:
    """Whether the app may go on; else the login form is drawn (and the app should stop)."""
    if state.current_login() is not None:
        try:
            client.whoami()
            return True
        except GatewayError as err:
            if err.status_code != 401:
                show_error(err, client.base_url)
                return False
            state.set_login(None)  # expired or logged out elsewhere
            st.info(t("login_ended"), icon=":material/lock_clock:")
            client = state.get_client()
    try:
        required = client.login_required()
    except GatewayError as err:
        show_error(err, client.base_url)
        return False
    if not required:
        return True
    login_form(client)
    return False


def login_form(client: GatewayClient) -> None:
    """Username and password; a right pair logs this browser session in."""
    with st.form("login-form", border=True):
        st.subheader(t("login_title"))
        username = st.text_input(t("username"), autocomplete="username")
        password = st.text_input(t("password"), type="password", autocomplete="current-password")
        if not st.form_submit_button(t("log_in"), type="primary"):
            return
    try:
        login = client.login(username.strip(), password)
    except GatewayError as err:
        if err.status_code in (401, 422):
            st.error(t("login_wrong"), icon=":material/lock:")
        else:
            show_error(err, client.base_url)
        return
    state.set_login(login)
    st.rerun()


def logout_button() -> None:
    """Who is logged in, and a button to log out (in the sidebar)."""
    login = state.current_login()
    if login is None:
        return
    st.caption(t("logged_in_as", name=login.username))
    if st.button(t("log_out"), icon=":material/logout:", key="logout"):
        try:
            state.get_client().logout()
        except GatewayError as err:
            if err.status_code != 401:  # an ended session is logged out already
                show_error(err)
                return
        state.set_login(None)
        st.rerun()
