"""The knowledge bases page: create, rename, delete; upload many files; live jobs; documents."""

from __future__ import annotations

import streamlit as st

from frontend import state
from frontend.i18n import t
from frontend.notices import fetched, show_error, show_rows
from frontend.safe_markdown import without_images
from frontend.sidebar import pick_kb
from services.client import (
    FINISHED_STAGES,
    SUPPORTED_EXTENSIONS,
    GatewayClient,
    GatewayError,
)
from services.common.schemas import DocumentPublic, DocumentStatus, JobPublic, JobStage

UPLOADER_ROUND_KEY = "uploader_round"
UPLOAD_REPORT_KEY = "upload_report"
JOBS_SHOWN = 20
POLL_S = 1.0
STATUS_ICONS = {
    DocumentStatus.READY: ":material/check_circle:",
    DocumentStatus.PENDING: ":material/hourglass_top:",
    DocumentStatus.FAILED: ":material/error:",
}


def library_page() -> None:
    """Pick or create a knowledge base, then manage its files."""
    client = state.get_client()
    pick_col, new_col = st.columns([2, 1], vertical_alignment="bottom")
    with pick_col:
        kb = pick_kb(client, where="library")
    with new_col:
        _create_kb(client)
    if kb is None:
        return
    _edit_kb(client, kb)
    _upload(client, kb)
    _jobs(client, kb)
    _documents(client, kb)


def _create_kb(client: GatewayClient) -> None:
    with st.popover(t("kb_new"), icon=":material/add:", use_container_width=True):
        with st.form("create_kb", clear_on_submit=True, border=False):
            name = st.text_input(t("name"), max_chars=64)
            description = st.text_input(t("description"))
            submitted = st.form_submit_button(t("create"), type="primary")
        if not submitted:
            return
        if not name.strip():
            st.warning(t("name_needed"))
            return
        try:
            created = client.create_knowledge_base(name.strip(), description.strip())
        except GatewayError as err:
            show_error(err, client.base_url)
            return
        state.set_kb(created.name)
        st.rerun()


def _edit_kb(client: GatewayClient, kb: str) -> None:
    with st.expander(f"{t('rename')} / {t('delete')}", icon=":material/edit:"):
        new_name = st.text_input(t("name"), value=kb, key=f"kb-rename-{kb}")
        confirm = st.checkbox(t("kb_delete_confirm", kb=kb), key=f"kb-confirm-{kb}")
        rename_col, delete_col = st.columns(2)
        try:
            if rename_col.button(t("rename"), disabled=new_name.strip() in ("", kb)):
                state.set_kb(client.update_knowledge_base(kb, new_name=new_name.strip()).name)
                st.rerun()
            if delete_col.button(t("delete"), disabled=not confirm, type="primary"):
                client.delete_knowledge_base(kb)
                state.set_kb(None)
                st.rerun()
        except GatewayError as err:
            show_error(err, client.base_url)


def _upload(client: GatewayClient, kb: str) -> None:
    st.subheader(t("upload"))
    for kind, message in st.session_state.pop(UPLOAD_REPORT_KEY, []):
        getattr(st, kind)(message)
    round_no = st.session_state.setdefault(UPLOADER_ROUND_KEY, 0)
    files = st.file_uploader(
        t("upload_hint"),
        type=list(SUPPORTED_EXTENSIONS),
        accept_multiple_files=True,
        key=f"uploader-{round_no}",
    )
    if not st.button(
        t("upload_button"), disabled=not files, type="primary", icon=":material/upload:"
    ):
        return
    try:
        accepted = client.upload(kb, [(f.name, f.getvalue()) for f in files or []])
    except GatewayError as err:
        show_error(err, client.base_url)
        return
    report = [("error", f"{r.filename}: {r.error_type}: {r.error}") for r in accepted.rejected]
    report += [("info", t("duplicate", name=d.filename)) for d in accepted.duplicates]
    # A new uploader key empties the uploader; the jobs table below follows the new jobs.
    st.session_state[UPLOAD_REPORT_KEY] = report
    st.session_state[UPLOADER_ROUND_KEY] = round_no + 1
    st.rerun()


def _jobs(client: GatewayClient, kb: str) -> None:
    st.subheader(t("jobs"))
    jobs = fetched(client, lambda: client.list_jobs(kb)[:JOBS_SHOWN])
    if jobs is None:
        return
    running = any(job.stage not in FINISHED_STAGES for job in jobs)
    # Poll only while something runs; the last job finishing refreshes the whole page.
    st.fragment(run_every=POLL_S if running else None)(_jobs_table)(client, kb, running)


def _jobs_table(client: GatewayClient, kb: str, was_running: bool) -> None:
    jobs = show_rows(
        client,
        lambda: client.list_jobs(kb)[:JOBS_SHOWN],
        lambda job: _job_row(client, job),
        "jobs_none",
    )
    if jobs is not None and was_running and all(job.stage in FINISHED_STAGES for job in jobs):
        st.rerun()


def stage_label(job: JobPublic) -> str:
    """``filename · stage · 42%`` in the current language."""
    return f"{job.filename} · {t('stage_' + job.stage.value)} · {job.progress:.0%}"


def _job_row(client: GatewayClient, job: JobPublic) -> None:
    if job.stage is JobStage.DONE:
        st.progress(1.0, text=stage_label(job))
        return
    if job.stage is not JobStage.FAILED:
        st.progress(job.progress, text=stage_label(job))
        return
    text_col, button_col = st.columns([6, 1], vertical_alignment="center")
    text_col.error(f"{stage_label(job)}\n\n{job.error_type}: {job.error}", icon=":material/error:")
    if button_col.button(t("retry"), key=f"retry-{job.id}", icon=":material/refresh:"):
        try:
            client.retry_job(job.id)
        except GatewayError as err:
            show_error(err, client.base_url)
            return
        st.rerun()


def human_size(size: int) -> str:
    """Bytes as B, KB or MB."""
    if size < 1024:
        return f"{size} B"
    if size < 1024**2:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024**2:.1f} MB"


def _documents(client: GatewayClient, kb: str) -> None:
    documents = fetched(client, lambda: client.list_documents(kb).data)
    if documents is None:
        return
    st.subheader(t("documents", n=len(documents)))
    if not documents:
        st.caption(t("documents_none"))
    for doc in documents:
        _document_row(client, kb, doc)


def _document_row(client: GatewayClient, kb: str, doc: DocumentPublic) -> None:
    text_col, button_col = st.columns([8, 1], vertical_alignment="center")
    text_col.markdown(f"{STATUS_ICONS.get(doc.status, '')} **{without_images(doc.filename)}**")
    meta = t(
        "doc_meta",
        size=human_size(doc.size_bytes),
        chunks=doc.chunk_count,
        date=doc.created_at.strftime("%Y-%m-%d %H:%M"),
    )
    text_col.caption(doc.error if doc.status is DocumentStatus.FAILED and doc.error else meta)
    if button_col.button(
        ":material/delete:", key=f"delete-doc-{doc.id}", help=t("delete"), type="tertiary"
    ):
        try:
            client.delete_document(kb, doc.id)
        except GatewayError as err:
            show_error(err, client.base_url)
            return
        st.rerun()
