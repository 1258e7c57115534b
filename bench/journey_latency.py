"""End-to-end latency of the learning journey over real sockets, recall on versus off, side by side.

Starts the fake upstream and `loopwise serve` (real embedding model, embedded Qdrant Edge) as
subprocesses on 127.0.0.1, teaches the proxy N lessons through /v1/feedback, then alternates
requests between an app whose policy recalls and one whose policy does not.

    python bench/journey_latency.py [--requests 200] [--lessons 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import free_port, wait_ready

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--lessons", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="loopwise-bench-"))
    up_port, proxy_port = free_port(), free_port()
    policies = work / "policies"
    policies.mkdir()
    (policies / "p.yaml").write_text(
        yaml.safe_dump(
            {
                "policies": [
                    {
                        "name": "no-recall",
                        "match": {"apps": ["off"]},
                        "recall": {"enabled": False},
                        "injectors": ["corrections"],
                    },
                    {"name": "recall", "injectors": ["guidance", "corrections"]},
                ]
            }
        )
    )
    config = work / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(work / "data"),
                "policies_dir": str(policies),
                "port": proxy_port,
                "log_level": "warning",
                "model_list": [
                    {
                        "model_name": "m",
                        "litellm_params": {
                            "model": "openai/fake",
                            "api_base": f"http://127.0.0.1:{up_port}/v1",
                            "api_key": "none",
                        },
                    }
                ],
            }
        )
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    upstream = subprocess.Popen(
        [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(up_port)], env=env
    )
    proxy = subprocess.Popen(["loopwise", "serve", "--config", str(config)], env=env)
    try:
        ready_s = wait_ready(f"http://127.0.0.1:{proxy_port}/readyz", proxy, timeout=60)
        base = f"http://127.0.0.1:{proxy_port}"
        with httpx.Client(base_url=base, timeout=30) as client:

            def ask(app: str, text: str) -> tuple[float, float, str]:
                t0 = time.perf_counter()
                r = client.post(
                    "/v1/chat/completions",
                    headers={"X-App": app},
                    json={"model": "m", "messages": [{"role": "user", "content": text}]},
                )
                r.raise_for_status()
                return (
                    (time.perf_counter() - t0) * 1000,
                    float(r.headers["x-loopwise-overhead-ms"]),
                    r.headers["x-loopwise-lessons"],
                )

            for i in range(args.lessons):
                answer = client.post(
                    "/v1/chat/completions",
                    headers={"X-App": "on"},
                    json={
                        "model": "m",
                        "messages": [
                            {"role": "user", "content": f"What is the policy for item {i} at Acme?"}
                        ],
                    },
                ).json()
                client.post(
                    "/v1/feedback",
                    json={
                        "interaction_id": answer["id"],
                        "rating": -1,
                        "categories": ["factually_incorrect"],
                        "correction": f"Item {i} ships in {i} days.",
                    },
                )
            for i in range(20):  # warm both paths
                ask("on", f"warm-up {i}"), ask("off", f"warm-up {i}")
            on, off, on_over, off_over, injected = [], [], [], [], 0
            for i in range(args.requests):
                text = f"Tell me the policy for item {i % args.lessons} at Acme, question {i}"
                ms, over, lessons = ask("on", text)
                on.append(ms)
                on_over.append(over)
                injected += bool(lessons)
                ms, over, _ = ask("off", text)
                off.append(ms)
                off_over.append(over)
    finally:
        proxy.terminate()
        upstream.terminate()
        proxy.wait(20)
        upstream.wait(20)

    def q(values: list[float], p: float) -> float:
        return statistics.quantiles(values, n=100)[int(p) - 1]

    result = {
        "requests_each": args.requests,
        "lessons": args.lessons,
        "time_to_ready_s": round(ready_s, 2),
        "recall_on": {
            "p50_ms": round(statistics.median(on), 2),
            "p90_ms": round(q(on, 90), 2),
            "overhead_p50_ms": round(statistics.median(on_over), 2),
            "requests_with_injection": injected,
        },
        "recall_off": {
            "p50_ms": round(statistics.median(off), 2),
            "p90_ms": round(q(off, 90), 2),
            "overhead_p50_ms": round(statistics.median(off_over), 2),
        },
    }
    result["recall_added_p50_ms"] = round(result["recall_on"]["p50_ms"] - result["recall_off"]["p50_ms"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
