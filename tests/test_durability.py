"""`kill -9` under load: no feedback the proxy acknowledged (201) is lost. A real `loopwise serve`
on a real socket is killed mid-stream of concurrent feedback posts, three times over, and what
was acknowledged is looked for after each restart."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

pytestmark = pytest.mark.model
WORKERS = 6


def start_proxy(config: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWISE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy.cli.main", "serve", "--config", str(config), "--port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = config.parent / "data" / "proxy.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the proxy exited at start"
        if address.exists():
            found = json.loads(address.read_text())
            if found["pid"] == process.pid:
                return process, str(found["url"])
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the proxy did not start within 60 s")


async def post_until_killed(base: str, interactions: list[str], acknowledged: list[str]) -> None:
    async def worker(n: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            for i in range(10_000):  # bounded; ends when the proxy is gone
                body = {"interaction_id": interactions[(n + i) % len(interactions)], "rating": -1}
                try:
                    response = await client.post("/v1/feedback", json=body)
                except httpx.HTTPError:
                    return
                if response.status_code == 201:
                    acknowledged.append(response.json()["id"])

    await asyncio.gather(*(worker(n) for n in range(WORKERS)))


async def test_acknowledged_feedback_survives_kill_9(tmp_path: Path, upstream) -> None:
    config = tmp_path / "config.yaml"
    params = {"model": "openai/fake", "api_base": upstream.url}
    deployment = {"model_name": "gpt-test", "litellm_params": params}
    config.write_text(yaml.safe_dump({"data_dir": "data", "model_list": [deployment], "log_level": "error"}))
    acknowledged: list[str] = []
    interactions: list[str] = []
    for cycle in range(3):
        process, base = start_proxy(config)
        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                if not interactions:
                    for n in range(10):
                        body = {"model": "gpt-test", "messages": [{"role": "user", "content": f"q {n}"}]}
                        answer = await client.post("/v1/chat/completions", json=body)
                        interactions.append(answer.json()["id"])
                before = len(acknowledged)
                load = asyncio.create_task(post_until_killed(base, interactions, acknowledged))
                while len(acknowledged) < before + 20:  # well under way
                    await asyncio.sleep(0.01)
                process.send_signal(signal.SIGKILL)
                await asyncio.wait_for(load, 30)
        finally:
            process.kill()
            process.wait(10)
        assert len(acknowledged) > before, f"cycle {cycle}: no feedback acknowledged"
    process, base = start_proxy(config)
    try:
        stored: set[str] = set()
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            for interaction in interactions:
                row = (await client.get(f"/v1/interactions/{interaction}")).json()
                stored |= {f["id"] for f in row["feedback"]}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    lost = set(acknowledged) - stored
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged feedback lost"
