"""``zhiku ingest``: collect files, upload them in batches, follow the jobs, print a summary."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.table import Table

from services.cli.output import console, err_console, fail
from services.client import SUPPORTED_EXTENSIONS, GatewayClient, GatewayError
from services.common.schemas import JobPublic, JobStage

# Keeps one multipart request well under the gateway's upload limit.
MAX_BATCH_BYTES = 32 * 1024 * 1024
RESULT_STYLES = {"done": "green", "duplicate": "yellow", "failed": "red", "rejected": "red"}


@dataclass
class FileResult:
    """What became of one file."""

    filename: str
    result: str
    detail: str = ""


def collect_files(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """Supported files under the given files/directories (recursively), and the skipped ones."""
    found: list[Path] = []
    skipped: list[Path] = []
    for path in paths:
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for candidate in candidates:
            if not candidate.is_file():
                skipped.append(candidate)
            elif candidate.suffix.lower().lstrip(".") in SUPPORTED_EXTENSIONS:
                found.append(candidate)
            else:
                skipped.append(candidate)
    # The same file named twice (e.g. a file and its directory) is uploaded once.
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return unique, skipped


def batches(
    files: list[Path], batch_size: int, max_bytes: int = MAX_BATCH_BYTES
) -> Iterator[list[Path]]:
    """Split files into upload batches of at most ``batch_size`` files and about ``max_bytes``."""
    batch: list[Path] = []
    size = 0
    for path in files:
        file_size = path.stat().st_size
        if batch and (len(batch) >= batch_size or size + file_size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += file_size
    if batch:
        yield batch


def ensure_kb(client: GatewayClient, kb: str, create: bool) -> None:
    """Make sure the knowledge base exists, creating it when allowed."""
    try:
        client.get_knowledge_base(kb)
        return
    except GatewayError as err:
        if err.error_type != "not_found":
            raise
        if not create:
            fail("not_found", f"knowledge base {kb!r} does not exist (use --create)")
    client.create_knowledge_base(kb)
    console.print(f"[green]created knowledge base[/green] {escape(kb)}")


def ingest_paths(
    client: GatewayClient, paths: list[Path], kb: str, create: bool, batch_size: int
) -> bool:
    """Upload and follow every supported file; True when none failed."""
    missing = [p for p in paths if not p.exists()]
    if missing:
        fail("not_found", f"no such file or directory: {', '.join(map(str, missing))}")
    files, skipped = collect_files(paths)
    for path in skipped:
        err_console.print(f"[yellow]skipped[/yellow] {escape(str(path))} (unsupported type)")
    if not files:
        fail("empty_input", f"no supported files ({', '.join(SUPPORTED_EXTENSIONS)})")
    ensure_kb(client, kb, create)
    results: list[FileResult] = []
    jobs: list[JobPublic] = []
    for batch in batches(files, batch_size):
        accepted = client.upload(kb, [(p.name, p.read_bytes()) for p in batch])
        jobs.extend(accepted.jobs)
        results += [
            FileResult(r.filename, "rejected", f"{r.error_type}: {r.error}")
            for r in accepted.rejected
        ]
        results += [
            FileResult(d.filename, "duplicate", "already in the knowledge base")
            for d in accepted.duplicates
        ]
    results += follow(client, jobs)
    print_summary(results)
    return not any(r.result in ("failed", "rejected") for r in results)


def follow(client: GatewayClient, jobs: list[JobPublic]) -> list[FileResult]:
    """Show one progress bar per job until each is done or failed."""
    if not jobs:
        return []
    final: dict[str, JobPublic] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[stage]}"),
        console=console,
    ) as progress:
        tasks: dict[str, TaskID] = {
            job.id: progress.add_task(escape(job.filename), total=1.0, stage=job.stage.value)
            for job in jobs
        }
        for job in client.follow_jobs(list(tasks)):
            done = 1.0 if job.stage is JobStage.DONE else job.progress
            progress.update(tasks[job.id], completed=done, stage=_stage_text(job))
            if job.stage in (JobStage.DONE, JobStage.FAILED):
                final[job.id] = job
    return [_job_result(final[job.id]) for job in jobs]


def _stage_text(job: JobPublic) -> str:
    style = {JobStage.DONE: "green", JobStage.FAILED: "red"}.get(job.stage, "cyan")
    return f"[{style}]{job.stage.value}[/{style}]"


def _job_result(job: JobPublic) -> FileResult:
    if job.stage is JobStage.DONE:
        return FileResult(job.filename, "done")
    return FileResult(job.filename, "failed", f"{job.error_type or 'failed'}: {job.error or ''}")


def print_summary(results: list[FileResult]) -> None:
    """A table of every file's outcome, then the counts."""
    table = Table("File", "Result", "Detail", title="Ingestion summary")
    for r in results:
        style = RESULT_STYLES.get(r.result, "white")
        table.add_row(escape(r.filename), f"[{style}]{r.result}[/{style}]", escape(r.detail))
    console.print(table)
    counts = {name: sum(r.result == name for r in results) for name in RESULT_STYLES}
    console.print(", ".join(f"{n} {name}" for name, n in counts.items()))
