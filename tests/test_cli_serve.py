"""`loopwise serve` on a real socket leaves its address in the data directory, so `explain`
finds it on any port and `index optimize` refuses to run under it; the address goes at exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from proxy.cli import app as cli
from tests.helpers import free_port

pytestmark = pytest.mark.model
QUESTION = "What is the refund window at Acme Corp?"


@pytest.fixture
def config(tmp_path: Path, upstream_server) -> Path:
    path = tmp_path / "config.yaml"
    params = {"model": "openai/fake", "api_base": upstream_server.url}
    deployment = {"model_name": "gpt-test", "litellm_params": params}
    settings = {
        "data_dir": "data",
        "model_list": [deployment],
        "log_level": "warning",
        "port": free_port(),
        "access": {"master_key": "sk-master-cli-test"},  # explain reaches a proxy that needs keys
    }
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.fixture
def served(config: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, object]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWISE_")}
    log = config.parent / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "proxy.cli.main", "serve", "--config", str(config), "--port", "0"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    address = config.parent / "data" / "proxy.json"
    try:
        deadline = time.monotonic() + 60
        while not address.exists():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the proxy did not start within 60 s"
            time.sleep(0.05)
        running = json.loads(address.read_text())
        while httpx.get(f"{running['url']}/healthz").status_code != 200:  # queued until ready
            time.sleep(0.05)
        yield process, running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def test_explain_and_index_optimize_find_the_proxy_on_any_port(config: Path, served) -> None:
    process, running = served
    assert running["pid"] == process.pid and str(running["url"]).startswith("http://127.0.0.1:")
    assert not str(running["url"]).endswith(":4000")
    runner = CliRunner()
    explained = runner.invoke(cli, ["explain", QUESTION, "--config", str(config), "--json"])
    assert explained.exit_code == 0, explained.output
    assert json.loads(explained.output)["via"] == running["url"]
    refused = runner.invoke(cli, ["index", "optimize", "--config", str(config)])
    assert refused.exit_code == 1 and f"pid {process.pid}" in refused.output
    second = subprocess.run(
        [sys.executable, "-m", "proxy.cli.main", "serve", "--config", str(config), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1 and f"another proxy (pid {process.pid}" in second.stderr

    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert not (config.parent / "data" / "proxy.json").exists()
    local = runner.invoke(cli, ["explain", QUESTION, "--config", str(config), "--json"])
    assert local.exit_code == 0, local.output
    assert json.loads(local.output)["via"].endswith("data")


def test_an_address_left_by_a_killed_proxy_is_ignored(config: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    code = "import os; print(os.getpid())"
    dead = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    stale = {"url": "http://127.0.0.1:9", "pid": int(dead.stdout), "started_at": 0}
    (data / "proxy.json").write_text(json.dumps(stale))
    explained = CliRunner().invoke(cli, ["explain", QUESTION, "--config", str(config), "--json"])
    assert explained.exit_code == 1
    assert "no proxy answers at http://127.0.0.1:" in explained.output and ":9 " not in explained.output
    assert "start one with `loopwise serve`" in explained.output
