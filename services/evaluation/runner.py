"""What both eval commands share: pick the questions, fill the knowledge base, show progress."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from services.client import GatewayClient
from services.evaluation.corpus import IngestSummary, fill_kb, prepare_kb
from services.evaluation.datasets import EvalSet, load_squad, sample_set, simplified_variant


def load_sets(
    paths: Sequence[Path],
    max_paragraphs: int | None,
    max_questions: int | None,
    seed: int,
    simplified: bool = False,
) -> list[EvalSet]:
    """Sampled sets, plus Simplified-Chinese variants of Traditional ones when asked."""
    sets = [sample_set(load_squad(p), max_paragraphs, max_questions, seed) for p in paths]
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise ValueError(f"two datasets have the same name: {names}")
    if simplified:
        sets += [v for v in (simplified_variant(s) for s in sets) if v is not None]
    return sets


def new_progress(console: Console) -> Progress:
    """A progress bar with a count and the elapsed time."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def ensure_corpus(
    client: GatewayClient,
    kb: str,
    sets: Sequence[EvalSet],
    reuse: bool,
    console: Console,
    timeout_s: float = 7200,
) -> IngestSummary:
    """Create (or, with reuse, keep) ``kb`` and ingest the sets' paragraphs it lacks."""
    prepare_kb(client, kb, reuse)
    paragraphs = [p for s in sets for p in s.paragraphs]
    with new_progress(console) as progress:
        task = progress.add_task(f"ingesting into {kb}", total=len(paragraphs))

        def show(done: int, total: int) -> None:
            progress.update(task, completed=len(paragraphs) - total + done)

        summary = fill_kb(client, kb, paragraphs, progress=show, timeout_s=timeout_s)
        progress.update(task, completed=len(paragraphs))
    console.print(
        f"{summary.uploaded} uploaded, {summary.reused} already there, "
        f"{len(summary.failed)} failed ({summary.seconds:.0f} s)"
    )
    for failure in summary.failed[:10]:
        console.print(f"[red]failed[/red] {failure}", markup=True)
    return summary


@contextmanager
def counting(console: Console, description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar for ``total`` steps; yields the function that advances it by n."""
    with new_progress(console) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
