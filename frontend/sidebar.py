"""Sidebar: pick or create a knowledge base, upload files with live progress, list documents."""

from __future__ import annotations

import streamlit as st

from frontend import state
from frontend.notices import show_error
from services.common.client import (
    FINISHED_STAGES,
    SUPPORTED_EXTENSIONS,
    GatewayClient,
    GatewayError,
)
from services.common.schemas import DocumentPublic, DocumentStatus, JobPublic, JobStage

UPLOADER_ROUND_KEY = "uploader_round"
UPLOAD_REPORT_KEY = "upload_report"
JOB_TIMEOUT_S = 1800.0
# Material icons ship with Streamlit; emoji need a system font that servers often lack.
STATUS_ICONS = {
    DocumentStatus.READY: ":material/check_circle:",
    DocumentStatus.PENDING: ":material/hourglass_top:",
    DocumentStatus.FAILED: ":material/error:",
}


def render_sidebar(client: GatewayClient) -> str | None:
    """Draw the sidebar and return the knowledge base picked (None when there is none)."""
    with st.sidebar:
        st.header("知识库 / Knowledge bases")
        kb = _pick_kb(client)
        _create_kb_form(client)
        if kb is None:
            return None
        st.divider()
        _upload_section(client, kb)
        st.divider()
        _documents_section(client, kb)
    return kb


def _pick_kb(client: GatewayClient) -> str | None:
    try:
        names = [kb.name for kb in client.list_knowledge_bases().data]
    except GatewayError as err:
        show_error(err, client.base_url)
        return None
    if not names:
        st.caption("还没有知识库，请先创建 / No knowledge base yet: create one below.")
        state.set_kb(None)
        return None
    current = state.current_kb()
    index = names.index(current) if current in names else 0
    picked = st.selectbox("选择知识库 / Pick a knowledge base", names, index=index)
    state.set_kb(picked)
    return picked


def _create_kb_form(client: GatewayClient) -> None:
    with st.expander("新建知识库 / New knowledge base", expanded=state.current_kb() is None):
        with st.form("create_kb", clear_on_submit=True):
            name = st.text_input("名称 / Name", max_chars=64)
            description = st.text_input("描述 / Description (optional)")
            submitted = st.form_submit_button("创建 / Create")
        if not submitted:
            return
        if not name.strip():
            st.warning("请输入名称 / Enter a name.")
            return
        try:
            created = client.create_knowledge_base(name.strip(), description.strip())
        except GatewayError as err:
            show_error(err, client.base_url)
            return
        state.set_kb(created.name)
        st.rerun()


def _upload_section(client: GatewayClient, kb: str) -> None:
    st.subheader("上传文档 / Upload documents")
    round_no = st.session_state.setdefault(UPLOADER_ROUND_KEY, 0)
    for kind, message in st.session_state.pop(UPLOAD_REPORT_KEY, []):
        getattr(st, kind)(message)
    files = st.file_uploader(
        "TXT / MD / HTML / PDF / DOCX",
        type=list(SUPPORTED_EXTENSIONS),
        accept_multiple_files=True,
        key=f"uploader-{round_no}",
    )
    if not st.button("上传 / Upload", disabled=not files, use_container_width=True):
        return
    try:
        accepted = client.upload(kb, [(f.name, f.getvalue()) for f in files or []])
    except GatewayError as err:
        show_error(err, client.base_url)
        return
    report = [("error", f"{r.filename}: {r.error_type}: {r.error}") for r in accepted.rejected]
    report += [
        ("info", f"{d.filename}: 已存在 / already in the knowledge base")
        for d in accepted.duplicates
    ]
    try:
        report += _follow_jobs(client, accepted.jobs)
    except GatewayError as err:
        report.append(("error", f"{err.error_type}: {err.error}"))
    # Rerun with a new uploader key: the uploader empties, the document list refreshes and
    # the outcome of each file stays on screen above the uploader.
    st.session_state[UPLOAD_REPORT_KEY] = report
    st.session_state[UPLOADER_ROUND_KEY] = round_no + 1
    st.rerun()


def _job_label(job: JobPublic) -> str:
    return f"{job.filename} · {job.stage.value} · {job.progress:.0%}"


def _job_outcome(job: JobPublic) -> tuple[str, str]:
    if job.stage is JobStage.DONE:
        return "success", f"{job.filename} · 完成 / done"
    return "error", f"{job.filename}: {job.error_type or 'failed'}: {job.error or ''}"


def _follow_jobs(client: GatewayClient, jobs: list[JobPublic]) -> list[tuple[str, str]]:
    """One progress bar per file, polled until each job is done or failed; the outcomes."""
    slots = {job.id: st.empty() for job in jobs}
    outcomes: dict[str, tuple[str, str]] = {}
    for job in jobs:
        slots[job.id].progress(job.progress, text=_job_label(job))
    for job in client.follow_jobs(list(slots), timeout_s=JOB_TIMEOUT_S):
        if job.stage in FINISHED_STAGES:
            outcomes[job.id] = _job_outcome(job)
            kind, message = outcomes[job.id]
            getattr(slots[job.id], kind)(message)
        else:
            slots[job.id].progress(job.progress, text=_job_label(job))
    return [outcomes[job.id] for job in jobs]


def _documents_section(client: GatewayClient, kb: str) -> None:
    try:
        documents = client.list_documents(kb).data
    except GatewayError as err:
        show_error(err, client.base_url)
        return
    st.subheader(f"文档 / Documents ({len(documents)})")
    for doc in documents:
        _document_row(client, kb, doc)


def _document_row(client: GatewayClient, kb: str, doc: DocumentPublic) -> None:
    text_col, button_col = st.columns([4, 1], vertical_alignment="center")
    icon = STATUS_ICONS.get(doc.status, "")
    text_col.markdown(f"{icon} {doc.filename}")
    detail = (
        doc.error if doc.status is DocumentStatus.FAILED else f"{doc.chunk_count} 片段 / chunks"
    )
    text_col.caption(detail or "")
    if button_col.button(
        ":material/delete:", key=f"delete-doc-{doc.id}", help="删除 / Delete", type="tertiary"
    ):
        try:
            client.delete_document(kb, doc.id)
        except GatewayError as err:
            show_error(err, client.base_url)
            return
        st.rerun()
