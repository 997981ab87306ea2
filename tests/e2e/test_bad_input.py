"""Bad input through the real gateway: a batch of broken files, and schemathesis fuzzing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from services.common.schemas import JobPublic, UploadAccepted
from tests.data.broken.make_broken import single_line
from tests.e2e.conftest import RunningSuite, suite_running, top_hit, upload_and_wait

pytestmark = pytest.mark.e2e

BROKEN = Path(__file__).resolve().parents[1] / "data" / "broken"
KB = "bad-input-kb"
EXAMPLES_PER_OPERATION = 12


@pytest.fixture(scope="module")
def broken_batch(running_suite: RunningSuite) -> tuple[UploadAccepted, dict[str, JobPublic]]:
    """One upload of every broken file, beside files that are merely unusual."""
    client = running_suite.client
    assert client.post("/api/v1/knowledge-bases", json={"name": KB}).status_code == 201
    files = {path.name: path.read_bytes() for path in sorted(BROKEN.iterdir())}
    files.pop("make_broken.py")
    files["huge_line.txt"] = single_line(10 * 2**20)  # over the suite's 2 MB limit
    files["long_line.txt"] = single_line(30_000)
    parts = [("files", (name, body, "application/octet-stream")) for name, body in files.items()]
    return upload_and_wait(client, KB, parts)


def test_each_broken_file_gets_a_clear_error_and_the_rest_lands(
    broken_batch: tuple[UploadAccepted, dict[str, JobPublic]],
) -> None:
    accepted, jobs = broken_batch
    assert {r.filename: r.error_type for r in accepted.rejected} == {
        "binary.txt": "unsupported_file_type",
        "huge_line.txt": "payload_too_large",
    }
    assert all(r.error for r in accepted.rejected)
    stages = {name: (job.stage, job.error_type) for name, job in jobs.items()}
    assert stages == {
        "truncated.pdf": ("failed", "document_parse_error"),
        "empty.docx": ("failed", "document_parse_error"),
        "gbk.txt": ("done", None),
        "gb18030.txt": ("done", None),
        "mixed_endings.txt": ("done", None),
        "long_line.txt": ("done", None),
    }
    assert "PDF" in (jobs["truncated.pdf"].error or "")
    assert "no text" in (jobs["empty.docx"].error or "")


@pytest.mark.parametrize(
    ("query", "filename", "text"),
    [
        ("青岚电器公司成立于哪一年？", "gbk.txt", "青岚电器公司成立于一九九八年"),
        ("欧元符号和人民币符号", "gb18030.txt", "欧元符号 € 与人民币符号 ￥"),
        ("𠀀字库扩展测试", "gb18030.txt", "𠀀"),
        ("south gauge Unix style", "mixed_endings.txt", "The south gauge reads in Unix style."),
    ],
)
def test_legacy_encodings_and_line_endings_are_searchable_as_written(
    running_suite: RunningSuite,
    broken_batch: tuple[UploadAccepted, dict[str, JobPublic]],
    query: str,
    filename: str,
    text: str,
) -> None:
    top = top_hit(running_suite.client, KB, query, top_k=3)
    assert top.document_name == filename
    assert text in top.text
    assert "\r" not in top.text


@pytest.fixture(scope="module")
def fuzzed_suite(
    tmp_path_factory: pytest.TempPathFactory, small_model: Path
) -> Iterator[RunningSuite]:
    """A suite of its own: fuzzing creates keys and deletes things other tests rely on."""
    with suite_running(tmp_path_factory, small_model, "fuzz") as suite:
        yield suite


def test_the_openapi_schema_holds_under_fuzzing(fuzzed_suite: RunningSuite) -> None:
    """Schemathesis: no 5xx, and every documented response matches its schema."""
    base = fuzzed_suite.gateway_url
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,  # the same cases every run: CI must not turn red by chance
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=base, timeout=120)
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
