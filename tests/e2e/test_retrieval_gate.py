"""Regression gate: hybrid recall@5 and MRR@10 on a fixed sample, via `zhiku eval retrieval`.

Record a new baseline (after a deliberate change) with ``ZHIKU_RECORD_BASELINE=1``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from services.evaluation import default_datasets_dir
from tests.e2e.conftest import RunningSuite

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
BASELINE = REPO / "tests" / "data" / "retrieval_baseline.json"
ZHIKU = Path(sys.executable).with_name("zhiku")
DATASETS = default_datasets_dir(REPO)
# 30 paragraphs and 60 of their questions from each set: 60 documents, 120 questions.
SAMPLE = ["--max-paragraphs", "30", "--max-questions", "60", "--seed", "0"]
TOLERANCE = 0.02


@pytest.mark.skipif(
    not (DATASETS / "cmrc2018_dev.json").exists(), reason=f"no datasets in {DATASETS}"
)
def test_hybrid_recall_at_5_stays_at_baseline(running_suite: RunningSuite, tmp_path: Path) -> None:
    out = tmp_path / "gate.json"
    args = [
        str(ZHIKU),
        "--gateway",
        running_suite.gateway_url,
        "eval",
        "retrieval",
        "--dataset",
        str(DATASETS / "cmrc2018_dev.json"),
        "--dataset",
        str(DATASETS / "xquad.en.json"),
        *SAMPLE,
        "--mode",
        "hybrid",
        "--k",
        "10",
        "--no-simplified",
        "--ingest-timeout",
        "300",
        "--kb",
        f"gate-{uuid.uuid4().hex[:8]}",
        "--out",
        str(out),
    ]
    env = {**os.environ, "COLUMNS": "160"}  # wide enough that rich does not wrap the table
    run = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(out.read_text())
    assert report["overall"]["questions"] == 120
    assert "all (pooled)" in run.stdout  # the table was printed
    if os.environ.get("ZHIKU_RECORD_BASELINE"):
        overall = report["overall"]
        record = {"recall@5": overall["recall@5"], "mrr@10": overall["mrr@10"], "args": SAMPLE}
        BASELINE.write_text(json.dumps(record, indent=2) + "\n")
    baseline = json.loads(BASELINE.read_text())
    for measure in ("recall@5", "mrr@10"):
        value = report["overall"][measure]
        assert value >= baseline[measure] - TOLERANCE, (
            f"hybrid {measure} fell to {value:.3f}; the baseline is {baseline[measure]:.3f} "
            f"(tolerance {TOLERANCE})"
        )
