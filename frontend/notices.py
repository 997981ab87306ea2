"""How the web app tells the user about the gateway's state and errors."""

from __future__ import annotations

import streamlit as st

from services.common.client import GatewayError
from services.common.schemas import HealthPublic

START_HINT = "启动网关 / Start it with: `make run`"


def show_unreachable(url: str, detail: str = "") -> None:
    """The error box shown when the gateway does not answer."""
    st.error(
        f"无法连接网关 / Gateway unreachable at {url}\n\n{START_HINT}"
        + (f"\n\n`{detail}`" if detail else ""),
        icon=":material/power_off:",
    )


def show_not_ready(health: HealthPublic) -> None:
    """The note shown while the gateway answers 503 on /readyz (a model or service loading)."""
    waiting = ", ".join(
        f"{name}: {state}" for name, state in health.checks.items() if state != "ok"
    )
    st.info(
        "模型加载中，请稍候 / Model loading, please wait…" + (f"\n\n{waiting}" if waiting else ""),
        icon=":material/hourglass_top:",
    )


def show_error(err: GatewayError, url: str = "") -> None:
    """Show a gateway error in the clearest form for its kind."""
    if err.error_type == "unreachable":
        show_unreachable(url or "the gateway", err.error)
    elif err.status_code == 503:
        st.info(f"模型加载中 / Model loading: {err.error}", icon=":material/hourglass_top:")
    else:
        st.error(f"{err.error_type}: {err.error}")
