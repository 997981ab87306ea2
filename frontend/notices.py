"""How the web app tells the user about the gateway's state and errors, and what to do."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import streamlit as st

from frontend.i18n import t
from services.client import GatewayClient, GatewayError
from services.common.schemas import HealthPublic

AUTH_STATUSES = (401, 403)
T = TypeVar("T")


def show_unreachable(url: str, detail: str = "") -> None:
    """The error box shown when the gateway does not answer."""
    st.error(
        t("unreachable", url=url)
        + "\n\n"
        + t("start_hint")
        + (f"\n\n`{detail}`" if detail else ""),
        icon=":material/power_off:",
    )


def failing_checks(health: HealthPublic) -> str:
    """The checks of /readyz that are not ok, as ``name: state``."""
    return ", ".join(f"{name}: {state}" for name, state in health.checks.items() if state != "ok")


def show_not_ready(health: HealthPublic) -> None:
    """The note shown while the gateway answers 503 on /readyz (a model or service loading)."""
    waiting = failing_checks(health)
    st.info(
        t("loading")
        + (f"\n\n{t('loading_checks', checks=waiting)}" if waiting else "")
        + f"\n\n{t('loading_hint')}",
        icon=":material/hourglass_top:",
    )


def show_error(err: GatewayError, url: str = "") -> None:
    """Show a gateway error in the clearest form for its kind, with what to do about it."""
    if err.error_type == "unreachable":
        show_unreachable(url or "the gateway", err.error)
    elif err.status_code in AUTH_STATUSES:
        st.error(t("auth", status=err.status_code), icon=":material/key_off:")
    elif err.error_type == "timeout":
        st.warning(t("timeout", error=err.error), icon=":material/timer_off:")
    elif err.status_code == 503:
        st.info(f"{t('loading')}\n\n`{err.error}`", icon=":material/hourglass_top:")
    else:
        st.error(f"{err.error_type}: {err.error}", icon=":material/error:")


def fetched(client: GatewayClient, fetch: Callable[[], T]) -> T | None:
    """What ``fetch`` gets from the gateway, or None once the gateway's error is shown."""
    try:
        return fetch()
    except GatewayError as err:
        show_error(err, client.base_url)
        return None


def show_rows(
    client: GatewayClient,
    fetch: Callable[[], Sequence[T]],
    row: Callable[[T], None],
    empty: str,
) -> Sequence[T] | None:
    """Draw each fetched item with ``row`` (the caption ``empty`` when there is none).

    None once the gateway's error is shown.
    """
    items = fetched(client, fetch)
    if items is None:
        return None
    if not items:
        st.caption(t(empty))
    for item in items:
        row(item)
    return items
