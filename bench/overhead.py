"""The proxy's own cost, side by side in one run: direct, Loopwise (recall off / on at 10k and 100k
lessons) and LiteLLM proxy, all in front of the same fast fake provider; plus recall alone.

    pip install -e '.[bench]' && python bench/overhead.py

Pins the fake provider and wrk to core 0 and the proxy under test to core 1 (on a machine with two
cores or more), so a proxy's CPU time per request is its own. Writes docs/benchmarks.json,
docs/benchmarks.png and docs/benchmarks.md. LiteLLM proxy is installed into bench/.venv-litellm on
first use. A full run takes 15-40 minutes (most of it building HNSW graphs; built indexes are
cached in bench/.cache).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import load, questions
from bench.harness import Server, cpu_seconds, free_port, machine, memory_mb, start
from bench.recall_latency import embed_lessons, measure_recall
from bench.report import write_report
from bench.seed import seed

HERE = Path(__file__).resolve().parent
LITELLM_VERSION = "1.106.2"
CHUNKS = 22
MASTER_KEY = "sk-bench-0123456789abcdef0123456789abcdef"  # LiteLLM proxy refuses to start without one
HEADERS = {"X-App": "bench", "Authorization": f"Bearer {MASTER_KEY}"}  # every target gets the same


def litellm_venv(path: Path) -> Path:
    exe = path / "bin" / "litellm"
    if not exe.exists():
        print(f"installing litellm[proxy]=={LITELLM_VERSION} into {path} (once)", flush=True)
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(path)], check=True
        )  # a half-made one too
        pip = [str(path / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, f"litellm[proxy]=={LITELLM_VERSION}"], check=True)
    return exe


def cores() -> tuple[int | None, int | None]:
    """(core for the provider and wrk, core for the proxy), or no pinning on one core."""
    return (0, 1) if (os.cpu_count() or 1) >= 2 and shutil.which("taskset") else (None, None)


def virtual_key(exe: str, config: Path) -> str:
    """A chat key for app `bench`, made the way an operator makes one; the proxy checks it per request."""
    made = subprocess.run(
        [
            exe,
            "keys",
            "create",
            "--name",
            "bench",
            "--scope",
            "chat",
            "--app",
            "bench",
            "--config",
            str(config),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return made.stdout.strip().splitlines()[-1]


def loopwise_config(
    work: Path, name: str, upstream: str, recall: bool, keyed: bool = False
) -> tuple[Path, Path]:
    data = work / name
    data.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "model_list": [
            {
                "model_name": "fake",
                "litellm_params": {"model": "openai/fake", "api_base": upstream, "api_key": "k"},
            }
        ],
        "data_dir": str(data),
        "log_level": "warning",
    }
    if keyed:
        config["access"] = {"master_key": MASTER_KEY}
    if not recall:
        policies = work / f"{name}-policies"
        policies.mkdir(exist_ok=True)
        (policies / "off.yaml").write_text(
            yaml.safe_dump({"policies": [{"name": "off", "recall": {"enabled": False}}]})
        )
        config["policies_dir"] = str(policies)
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, data


def traffic(kind: str, count: int, stream: bool, run: str, part: str = "test") -> list[bytes]:
    """The mix's measured turns are of one half of its sentences (`test`); what the proxy
    learns from first, of the other (`train`)."""
    if kind == "mix":
        return questions.mix_bodies(count, "fake", stream=stream, run=run, part=part)
    return questions.bodies(count, "fake", stream=stream, run=run)


def first_token_ms(base: str, headers: dict[str, str], count: int, kind: str) -> list[float]:
    """Time to the first streamed byte, sequential requests with distinct questions."""
    out = []
    bodies = traffic(kind, count, stream=True, run="t")
    headers = {"Content-Type": "application/json", **headers, "X-Session-Id": "ttft"}
    with httpx.Client(base_url=base, timeout=60, headers=headers) as client:
        for body in bodies:
            began = time.perf_counter()
            with client.stream("POST", "/v1/chat/completions", content=body) as response:
                first = None
                for _ in response.iter_raw():
                    first = first or time.perf_counter()
                out.append(((first or time.perf_counter()) - began) * 1000)
    return out


def recall_ms(data: Path) -> tuple[list[float], dict[str, int]]:
    """Recall times of the sequential first-token requests, and recall outcomes under all the load."""
    conn = sqlite3.connect(f"file:{data / 'trail.db'}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT recall_ms FROM interactions WHERE session_id = 'ttft' AND recall_ms IS NOT NULL"
    )
    times = [r[0] for r in rows]
    statuses = dict(
        conn.execute(  # requested_model 'bench': the rows bench/seed.py wrote, not requests
            "SELECT recall_status, count(*) FROM interactions WHERE requested_model != 'bench' GROUP BY 1"
        ).fetchall()
    )
    conn.close()
    return times, statuses


def outcomes_per_point(data: Path) -> dict[str, Any]:
    """Per load point (the X-User-Id each point sends): recall outcomes by status and stage, and
    how many turns near a lesson got that lesson (the tag `n<k>` names lesson k)."""
    conn = sqlite3.connect(f"file:{data / 'trail.db'}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT user_id, recall_status, recall_stage, recall_ms, question, injected_json FROM interactions "
        "WHERE requested_model != 'bench' AND user_id LIKE 'point-%'"
    ).fetchall()
    conn.close()
    points: dict[str, Any] = {}
    for user, status, stage, ms, question, injected in rows:
        point = points.setdefault(user, {"outcomes": {}, "near": 0, "near_got_it": 0, "ms_by_stage": {}})
        key = f"{status}/{stage}"
        point["outcomes"][key] = point["outcomes"].get(key, 0) + 1
        if ms is not None:
            point["ms_by_stage"].setdefault(key, []).append(ms)
        tag = question.rsplit("#", 1)[-1]
        if "n" in tag:
            lesson = str(uuid.UUID(int=int(tag.rsplit("n", 1)[1]) + 1))
            point["near"] += 1
            point["near_got_it"] += lesson in {i["lesson_id"] for i in json.loads(injected)}
    for point in points.values():
        point["ms_by_stage"] = {k: statistics.median(v) for k, v in point["ms_by_stage"].items()}
    return points


def wait_for_gate(base: str, limit_s: float = 900) -> float:
    """Seconds until recall's cheap stage holds every lesson (it is built after the proxy is ready)."""
    began = time.perf_counter()
    while time.perf_counter() - began < limit_s:
        state = httpx.get(base + "/readyz", timeout=10).json()["checks"].get("recall_gate", {}).get("state")
        if state in ("ready", "off", "failed", None):
            return time.perf_counter() - began
        time.sleep(0.5)
    raise RuntimeError(f"recall's cheap stage was not ready after {limit_s} s")


def measure(
    server: Server, args: argparse.Namespace, work: Path, core: int | None, headers: dict[str, str] = HEADERS
) -> dict[str, Any]:
    time.sleep(2)  # settle: idle memory once startup work is done
    result: dict[str, Any] = {"ready_s": server.ready_s, "idle_rss_mb": memory_mb(server.proc.pid, "VmRSS")}

    runs = iter("abcdefghijklmnop")

    def script(mode: str, point: str, part: str = "test") -> Path:
        """Bodies no earlier run used, so the embedding cache never answers for recall; the
        point's name as the user id, so the trail tells the points apart."""
        run = next(runs)
        bodies = traffic(args.traffic, 4000, mode == "stream", run, part)
        tagged = {**headers, "X-User-Id": f"point-{point}"}
        return load.script(work / f"{server.name}-{run}.lua", bodies, tagged, "/v1/chat/completions")

    if args.traffic == "mix" and args.learn > 0:  # traffic the cheap stage learns from, unmeasured
        load.run(server.base, script("json", "learn", part="train"), 8, args.learn, core)
    for mode in ("json", "stream"):
        load.run(server.base, script(mode, "warmup"), 8, args.warmup, core)
        for connections in args.connections:
            lua = script(mode, f"{mode}_c{connections}")
            before = cpu_seconds(server.proc.pid)
            outcome = load.run(server.base, lua, connections, args.duration, core)
            used = cpu_seconds(server.proc.pid) - before
            outcome["cpu_ms_per_request"] = used * 1000 / max(outcome["requests"], 1)
            result[f"{mode}_c{connections}"] = outcome
            print(
                f"  {server.name:14} {mode:6} c={connections:<3} {outcome['rps']:8.0f} req/s  "
                f"p50 {outcome['p50_us'] / 1000:7.2f} ms  cpu/req {outcome['cpu_ms_per_request']:6.3f} ms  "
                f"errors {outcome['errors'] + outcome['non2xx']}",
                flush=True,
            )
    result["ttft_ms"] = first_token_ms(server.base, headers, args.ttft_requests, args.traffic)
    result["peak_rss_mb"] = memory_mb(server.proc.pid, "VmHWM")
    return result


def sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per load point")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--learn",
        type=int,
        default=30,
        help="seconds of the mix's other sentences sent first, unmeasured (the gate's map learns)",
    )
    parser.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 64])
    parser.add_argument("--lessons", type=sizes, default=[10_000, 100_000], help="'' for none")
    parser.add_argument(
        "--recall-sizes", type=sizes, default=[10_000, 100_000, 1_000_000], help="'' for none"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another `loopwise` executable (e.g. an older checkout's venv) measured recall-off in the same run",
    )
    parser.add_argument("--ttft-requests", type=int, default=100)
    parser.add_argument(
        "--traffic",
        choices=("mix", "short"),
        default="mix",
        help="mix: user turns of 8-300 words, one in five near a lesson (bench/questions.py); "
        "short: 10-16-token questions, half of them near a lesson (the benchmark before issue 11)",
    )
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument(
        "--recall-only",
        action="store_true",
        help="measure recall alone and merge into an existing benchmarks.json",
    )
    parser.add_argument("--cache", type=Path, default=HERE / ".cache", help="built indexes are kept here")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs")
    args = parser.parse_args()
    load.ensure_wrk()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    provider_core, proxy_core = cores()
    args.cache.mkdir(parents=True, exist_ok=True)
    real = embed_lessons(args.cache)
    if args.recall_only:
        results = json.loads((args.out / "benchmarks.json").read_text())
        for size in args.recall_sizes:
            results["recall"][str(size)] = measure_recall(size, args.cache, real)
        (args.out / "benchmarks.json").write_text(json.dumps(results, indent=1))
        write_report(results, args.out)
        return
    work = Path(tempfile.mkdtemp(prefix="loopwise-overhead-"))
    results: dict[str, Any] = {"machine": machine(), "python": platform.python_version(), "targets": {}}
    results["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    up_port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    results["targets"] = run_targets(args, work, real, up_port, provider_core, proxy_core, env)
    print("recall alone (embed + filtered search):", flush=True)
    results["recall"] = {str(size): measure_recall(size, args.cache, real) for size in args.recall_sizes}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmarks.json").write_text(json.dumps(results, indent=1))
    write_report(results, args.out)
    print(f"wrote {args.out / 'benchmarks.md'}", flush=True)
    shutil.rmtree(work, ignore_errors=True)


def run_targets(
    args: argparse.Namespace,
    work: Path,
    real: list[tuple[str, str, list[float]]],
    up_port: int,
    provider_core: int | None,
    proxy_core: int | None,
    env: dict[str, str],
) -> dict[str, Any]:
    upstream = f"http://127.0.0.1:{up_port}/v1"
    fake = start(
        "fake",
        [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(up_port), "--chunks", str(CHUNKS)],
        "/v1/chat/completions",
        up_port,
        provider_core,
        env,
        work / "fake.log",
    )
    targets: dict[str, Any] = {}
    try:
        direct = Server("direct", fake.proc, fake.base, 0.0)
        print("direct to the fake provider:", flush=True)
        targets["direct"] = measure(direct, args, work, provider_core)
        loopwise = str(Path(sys.executable).parent / "loopwise")
        plans: list[tuple[str, bool, int, str, bool]] = [("loopwise-off", False, 0, loopwise, False)]
        plans.append(("loopwise-off-keys", False, 0, loopwise, True))  # a virtual key on every request
        if args.baseline:
            plans.append(("loopwise-off-baseline", False, 0, str(args.baseline), False))
        plans += [(f"loopwise-{n // 1000}k", True, n, loopwise, False) for n in args.lessons]
        for name, recall, lessons, exe, keyed in plans:
            config, data = loopwise_config(work, name, upstream, recall, keyed)
            headers = {**HEADERS, "Authorization": f"Bearer {virtual_key(exe, config)}"} if keyed else HEADERS
            if lessons:
                print(f"seeding {lessons} lessons (and building the HNSW graph)...", flush=True)
                built = seed(data, lessons, "bench", real)
                print(
                    f"  seeded in {built['insert_s']:.0f} s, graph built in {built['optimize_s']:.0f} s",
                    flush=True,
                )
            port = free_port()
            server = start(
                name,
                [exe, "serve", "--config", str(config), "--port", str(port)],
                "/readyz",
                port,
                proxy_core,
                env,
                work / f"{name}.log",
            )
            print(f"{name}: ready in {server.ready_s:.2f} s", flush=True)
            try:
                if recall:
                    gate_s = wait_for_gate(server.base)
                    print(f"  recall's cheap stage ready after {gate_s:.1f} s more", flush=True)
                targets[name] = measure(server, args, work, provider_core, headers)
                if recall:
                    targets[name]["gate_ready_s"] = gate_s
            finally:
                server.stop()
            if recall:
                targets[name]["recall_ms"], targets[name]["recall_statuses"] = recall_ms(data)
                targets[name]["points"] = outcomes_per_point(data)
            if lessons:
                targets[name]["lessons"] = lessons
            shutil.rmtree(data, ignore_errors=True)
        if not args.skip_litellm:
            exe = litellm_venv(HERE / ".venv-litellm")
            cfg = work / "litellm.yaml"
            cfg.write_text(
                yaml.safe_dump(
                    {
                        "model_list": [
                            {
                                "model_name": "fake",
                                "litellm_params": {
                                    "model": "openai/fake",
                                    "api_base": upstream,
                                    "api_key": "k",
                                },
                            }
                        ]
                    }
                )
            )
            port = free_port()
            server = start(
                "litellm-proxy",
                [str(exe), "--config", str(cfg), "--port", str(port), "--host", "127.0.0.1"],
                "/health/liveliness",
                port,
                proxy_core,
                {**env, "LITELLM_MASTER_KEY": MASTER_KEY},
                work / "litellm.log",
            )
            print(f"litellm-proxy: ready in {server.ready_s:.2f} s", flush=True)
            try:
                targets["litellm-proxy"] = measure(server, args, work, provider_core)
            finally:
                server.stop()
    finally:
        fake.stop()
    return targets


if __name__ == "__main__":
    main()
