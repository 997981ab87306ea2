"""Fill a scratch knowledge base with paragraphs through the gateway's upload API."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from services.client import FINISHED_STAGES, GatewayClient, GatewayError
from services.common.schemas import DocumentStatus, JobStage
from services.evaluation.datasets import Paragraph

logger = logging.getLogger(__name__)

UPLOAD_BATCH = 50
ProgressFn = Callable[[int, int], None]


@dataclass
class IngestSummary:
    """What filling the knowledge base did."""

    uploaded: int = 0
    reused: int = 0
    failed: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def prepare_kb(client: GatewayClient, kb: str, reuse: bool) -> None:
    """Create ``kb``; an existing one is kept with ``reuse`` and recreated empty otherwise."""
    try:
        client.get_knowledge_base(kb)
        exists = True
    except GatewayError as err:
        if err.error_type != "not_found":
            raise
        exists = False
    if exists and reuse:
        return
    if exists:
        client.delete_knowledge_base(kb)
    client.create_knowledge_base(kb, "zhiku eval scratch knowledge base")


def fill_kb(
    client: GatewayClient,
    kb: str,
    paragraphs: Sequence[Paragraph],
    progress: ProgressFn | None = None,
    timeout_s: float = 6 * 3600,
) -> IngestSummary:
    """Upload the paragraphs not yet in ``kb`` (50 per request) and wait for their jobs."""
    started = time.monotonic()
    summary = IngestSummary()
    ready = {d.filename for d in client.list_documents(kb).data if d.status == DocumentStatus.READY}
    missing = [p for p in paragraphs if p.filename not in ready]
    summary.reused = len(paragraphs) - len(missing)
    job_ids: list[str] = []
    for start in range(0, len(missing), UPLOAD_BATCH):
        batch = missing[start : start + UPLOAD_BATCH]
        accepted = client.upload(kb, [(p.filename, p.text.encode("utf-8")) for p in batch])
        job_ids.extend(job.id for job in accepted.jobs)
        summary.failed.extend(f"{r.filename}: {r.error}" for r in accepted.rejected)
        sent = {p.filename: p for p in batch}
        for dup in accepted.duplicates:
            # Same text already stored under another name: questions on it count that document.
            for name, para in sent.items():
                if para.text and name != dup.filename and _is_same(para, dup.sha256):
                    summary.aliases[name] = dup.filename
    summary.uploaded = len(job_ids)
    _wait(client, kb, set(job_ids), summary, progress, timeout_s)
    summary.seconds = time.monotonic() - started
    return summary


def _is_same(paragraph: Paragraph, sha256: str) -> bool:
    return hashlib.sha256(paragraph.text.encode("utf-8")).hexdigest() == sha256


def _wait(
    client: GatewayClient,
    kb: str,
    job_ids: set[str],
    summary: IngestSummary,
    progress: ProgressFn | None,
    timeout_s: float,
) -> None:
    """Poll the knowledge base's job list (one request for all jobs) until ours are finished."""
    deadline = time.monotonic() + timeout_s
    while job_ids:
        jobs = [j for j in client.list_jobs(kb) if j.id in job_ids]
        finished = [j for j in jobs if j.stage in FINISHED_STAGES]
        if progress:
            progress(len(finished), len(job_ids))
        if len(finished) >= len(job_ids):
            failed = [j for j in finished if j.stage == JobStage.FAILED]
            summary.failed.extend(f"{j.filename}: {j.error}" for j in failed)
            return
        if time.monotonic() > deadline:
            raise GatewayError(0, f"ingestion still running after {timeout_s:.0f} s", "timeout")
        time.sleep(2.0)
