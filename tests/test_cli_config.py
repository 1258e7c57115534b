"""`loopwise --version`, `loopwise config check`, and config errors as one clear line each."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from proxy import __version__
from proxy.cli.main import app
from proxy.storage.db import connect

CONFIGS = Path(__file__).parent / "data" / "litellm_configs"
runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"loopwise {__version__}"


def test_config_check_shows_routes_adapters_and_ignored_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENAI_API_BASE", "http://127.0.0.1:9/v1")
    result = runner.invoke(app, ["config", "check", "--config", str(CONFIGS / "otel_test_config.yaml")])
    assert result.exit_code == 0, result.output
    assert (
        "  fake-openai-endpoint\n    -> openai/gpt-5-mini at http://127.0.0.1:9/v1 via relay" in result.output
    )
    assert "-> cohere/rerank-english-v3.0 via litellm" in result.output
    assert "config: guardrails is accepted but not acted on by Loopwise" in result.output
    assert "config: litellm_settings.callbacks is accepted but not acted on by Loopwise" in result.output


def test_a_broken_config_is_one_line_per_problem(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n"
        "  - model_name: b\n    litellm_params: {api_base: http://x}\n"
        "upstream: {num_retrys: 3}\n"
    )
    result = runner.invoke(app, ["config", "check", "--config", str(config)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines[0] == f"error: {config}: model_list[1].litellm_params.model: field required"
    assert lines[1].startswith(
        f"error: {config}: upstream.num_retrys: unknown setting; valid: allowed_fails,"
    )
    assert "Traceback" not in result.output and "pydantic" not in result.output and len(lines) == 2


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("model_list:\n  - model_name: [a\n")
    result = runner.invoke(app, ["config", "check", "--config", str(config)])
    assert (
        result.exit_code == 2
        and "invalid YAML (line" in result.output
        and len(result.output.splitlines()) == 1
    )


@pytest.mark.parametrize("command", [["config", "check"], ["serve"]])
def test_a_bad_embedding_model_path_is_one_clear_line(tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"data_dir: data\nembedding:\n  model_path: {tmp_path / 'nope'}\n")
    result = runner.invoke(app, [*command, "--config", str(config)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: embedding.model_path {tmp_path / 'nope'} does not exist; point it at a directory with "
        "model.onnx and the tokenizer files, or set it to null for the bundled model"
    )


def test_serve_prints_config_errors_without_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("port: lots\n")
    result = runner.invoke(app, ["serve", "--config", str(config)])
    assert result.exit_code == 2 and result.output.strip().startswith(f"error: {config}: port: ")


def test_a_trail_db_an_older_version_wrote_is_refused_for_reading_with_what_to_do(tmp_path: Path) -> None:
    data = tmp_path / "data"
    conn = connect(data / "trail.db")
    conn.execute("DELETE FROM migrations WHERE name = 'm009_rollups'")  # as an older version left it
    conn.close()
    result = runner.invoke(app, ["report", "--data-dir", str(data)])
    assert result.exit_code == 1
    assert "older Loopwise" in result.output and "m009_rollups" in result.output
    assert "loopwise serve" in result.output
