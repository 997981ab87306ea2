"""The evaluation dashboard: the latest JSON results under bench/results, as tables and charts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from frontend.i18n import t

REPO = Path(__file__).resolve().parents[1]


def results_dir() -> Path:
    """Where the benchmarks write, from ``ZHIKU_BENCH_RESULTS`` (default ``bench/results``)."""
    return Path(os.environ.get("ZHIKU_BENCH_RESULTS", REPO / "bench" / "results"))


def tables(value: Any, path: str = "") -> list[tuple[str, pd.DataFrame]]:
    """Every list of records (or mapping of records) inside a JSON document, as named tables."""
    found: list[tuple[str, pd.DataFrame]] = []
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        found.append((path or "results", pd.json_normalize(value)))
    elif isinstance(value, dict):
        if value and all(isinstance(v, dict) for v in value.values()):
            scalar = all(
                not isinstance(x, (dict, list)) for v in value.values() for x in v.values()
            )
            if scalar:
                frame = pd.DataFrame.from_dict(value, orient="index")
                found.append((path or "results", frame.rename_axis("name").reset_index()))
                return found
        for key, item in value.items():
            found.extend(tables(item, f"{path}.{key}" if path else str(key)))
    return found


def _numeric_columns(frame: pd.DataFrame, word: str) -> list[str]:
    return [
        str(c)
        for c in frame.columns
        if word in str(c).lower() and pd.api.types.is_numeric_dtype(frame[c])
    ]


def _label_column(frame: pd.DataFrame) -> str | None:
    for name in ("mode", "name", "model", "dataset"):
        if name in frame.columns:
            return name
    return None


def _charts(frame: pd.DataFrame) -> None:
    label = _label_column(frame)
    if label is None:
        return
    for word, title in (
        ("recall", "eval_recall"),
        ("latency", "eval_latency"),
        ("_ms", "eval_latency"),
    ):
        columns = _numeric_columns(frame, word)
        if columns:
            st.caption(t(title))
            st.bar_chart(frame.set_index(label)[columns], horizontal=False)
            return


def _show_file(path: Path) -> None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        st.warning(t("eval_bad", name=path.name, error=exc))
        return
    st.subheader(path.stem)
    for name, frame in tables(document):
        st.markdown(f"**{name}**")
        st.dataframe(frame, hide_index=True, use_container_width=True)
        _charts(frame)
    with st.expander(t("eval_raw")):
        st.json(document, expanded=False)


def evaluation_page() -> None:
    """Each results file, newest first; a note on how to make them when there are none."""
    st.caption(t("eval_intro"))
    folder = results_dir()
    files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not files:
        st.info(t("eval_none", dir=folder), icon=":material/info:")
        return
    for path in files:
        _show_file(path)
