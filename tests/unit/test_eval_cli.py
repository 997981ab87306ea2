"""`zhiku eval` refuses bad arguments before it touches the gateway."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from services.cli.main import app


def test_eval_lists_both_commands() -> None:
    result = CliRunner().invoke(app, ["eval", "--help"])
    assert result.exit_code == 0
    assert "retrieval" in result.output and "answers" in result.output


def test_an_unknown_mode_is_a_usage_error(tmp_path: Path) -> None:
    dataset = tmp_path / "set.json"
    dataset.write_text('{"data": []}')
    args = ["--gateway", "http://127.0.0.1:9", "eval", "retrieval", "--dataset", str(dataset)]
    result = CliRunner().invoke(app, [*args, "--mode", "fuzzy"])
    assert result.exit_code == 2
    assert "mode must be dense, keyword or hybrid" in result.output


def test_a_missing_dataset_is_a_usage_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.json")
    result = CliRunner().invoke(app, ["eval", "answers", "--dataset", missing])
    assert result.exit_code == 2
