"""Several `loopwise serve` replicas on one PostgreSQL: how fresh recall is across them, what
one and two replicas serve, and how fast the trail is written to PostgreSQL.

    python bench/replicas.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
        [--freshness 40] [--seconds 8] [--connections 32] [--trail-rows 20000] [--out docs]

- freshness: feedback with a correction on replica A; the same question on replica B, asked
  every 20 ms, until B injects the lesson: seconds from the acknowledged feedback to the first
  answer on B that carries it (p50, p99).
- throughput: production-like bodies (bench/questions.mix_bodies, recall on) through wrk at
  one replica pinned to core 0, then spread over two replicas pinned to cores 0 and 1 (one wrk
  each, as a round-robin balancer would): requests per second, and the ratio; and two replicas
  on core 0 alone, whose CPU per request against one replica's says whether replicas slow each
  other (on a two-core machine the provider, PostgreSQL and wrk share the replicas' cores, so
  the ratio of the first two says more about the machine than about Loopwise).
- trail write: the writer's batches (256 rows) into PostgreSQL: interactions per second.

Each run makes its own database on the server and drops it. The harness (`Fleet`) is what
tests/test_replicas.py runs in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import load, questions
from bench.harness import cpu_seconds, free_port, machine, pinned, wait_ready
from proxy.storage import pg_server

HERE = Path(__file__).resolve().parent
SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
FRUITS = ["saffron", "quince", "medlar", "loquat", "damson", "rowan", "sloe", "yuzu"]
BIRDS = ["heron", "avocet", "plover", "curlew", "dunlin", "godwit"]


@dataclass
class Replica:
    name: str
    port: int
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        self.proc.wait(timeout=60)


@dataclass
class Fleet:
    """Replicas of `loopwise serve` on one database and one fake provider, each with its own
    data directory (so its own embedded index, following the database)."""

    work: Path
    database_url: str | None
    upstream: str
    upstream_pid: int = 0
    replicas: list[Replica] = field(default_factory=list)
    master_key: str | None = None  # set before `start`: every route then needs a key

    def config(self, name: str, port: int) -> Path:
        deployment = {
            "model_name": "gpt-test",
            "litellm_params": {"model": "openai/fake", "api_base": self.upstream},
        }
        settings = {
            "data_dir": str(self.work / name),
            **({"database_url": self.database_url} if self.database_url else {}),
            "model_list": [deployment],
            "log_level": "warning",
            "access_log": False,
            "port": port,
            **({"access": {"master_key": self.master_key}} if self.master_key else {}),
        }
        path = self.work / f"{name}.yaml"
        path.write_text(yaml.safe_dump(settings))
        return path

    def start(self, count: int, cores: list[int | None] | None = None) -> list[Replica]:
        """Start `count` more replicas side by side; returns them once each is ready."""
        started = []
        for i in range(count):
            name, port = f"replica-{len(self.replicas) + 1}", free_port()
            core = cores[i] if cores else None
            log = self.work / f"{name}.log"
            command = [
                sys.executable,
                "-m",
                "proxy.cli.main",
                "serve",
                "--config",
                str(self.config(name, port)),
            ]
            env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWISE_")}
            with log.open("wb") as out:
                proc = subprocess.Popen(pinned(core, command), env=env, stdout=out, stderr=subprocess.STDOUT)
            replica = Replica(name, port, self.work / name, proc, log)
            self.replicas.append(replica)
            started.append(replica)
        for replica in started:
            try:
                wait_ready(replica.base + "/readyz", replica.proc, timeout=240)
            except RuntimeError:
                raise RuntimeError(
                    f"{replica.name} did not start:\n{replica.log.read_text()[-3000:]}"
                ) from None
        return started

    def stop(self) -> None:
        for replica in self.replicas:
            if replica.proc.poll() is None:
                replica.kill(signal.SIGTERM)
        self.replicas.clear()


@contextlib.contextmanager
def fleet(work: Path, server: str = SERVER) -> Iterator[Fleet]:
    """A new database on `server` and a fake provider; dropped and stopped after."""
    work.mkdir(parents=True, exist_ok=True)
    name = f"lw_fleet_{uuid.uuid4().hex[:12]}"
    pg_server.create_database(server, name)
    port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    group = Fleet(
        work, pg_server.with_database(server, name), f"http://127.0.0.1:{port}/v1", upstream_pid=upstream.pid
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1/models", upstream, timeout=30)
        yield group
    finally:
        group.stop()
        upstream.terminate()
        upstream.wait(timeout=30)
        pg_server.drop_database(server, name)


def ask(client: httpx.Client, replica: Replica, question: str, session: str) -> httpx.Response:
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": question}]}
    headers = {"X-App": "shop", "X-Session-Id": session}
    return client.post(f"{replica.base}/v1/chat/completions", json=body, headers=headers)


def teach(client: httpx.Client, replica: Replica, question: str, correction: str) -> str:
    """Ask on `replica` and correct the answer there; returns the lesson's id, once acknowledged."""
    answered = ask(client, replica, question, f"teacher-{uuid.uuid4().hex[:8]}")
    answered.raise_for_status()
    body = {"interaction_id": answered.json()["id"], "rating": -1, "correction": correction}
    sent = client.post(f"{replica.base}/v1/feedback", json=body)
    assert sent.status_code == 201, sent.text
    assert sent.json()["lesson_status"] == "active", sent.text
    lesson: str = sent.json()["lesson_id"]
    return lesson


def injected_within(
    client: httpx.Client, replica: Replica, question: str, lesson: str, limit_s: float, since: float
) -> float | None:
    """Seconds from `since` until `replica` injects `lesson` into an answer to `question`."""
    while time.monotonic() - since < limit_s:
        answer = ask(client, replica, question, f"learner-{uuid.uuid4().hex[:8]}")
        if lesson in answer.headers.get("x-loopwise-lessons", "").split(","):
            return time.monotonic() - since
        time.sleep(0.02)
    return None


def freshness(group: Fleet, count: int) -> dict[str, Any]:
    a, b = group.replicas[0], group.replicas[1]
    seconds = []
    with httpx.Client(timeout=30) as client:
        for i in range(count):
            # plain words: a random hex string would read as a secret to the screen (lesson pending)
            name = f"{FRUITS[i % len(FRUITS)]} {BIRDS[i // len(FRUITS) % len(BIRDS)]} {i}"
            question = f"What is the code word for the project called {name}?"
            lesson = teach(client, a, question, f"The code word is {BIRDS[i % len(BIRDS)]}.")
            took = injected_within(client, b, question, lesson, 30.0, time.monotonic())
            assert took is not None, f"lesson {lesson} never reached {b.name}"
            seconds.append(took)
    seconds.sort()
    return {
        "lessons": count,
        "p50_s": round(statistics.median(seconds), 3),
        "p99_s": round(seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))], 3),
        "max_s": round(seconds[-1], 3),
    }


def throughput(
    work: Path,
    server: str,
    replicas: int,
    seconds: int,
    connections: int,
    cores: list[int | None] | None = None,
) -> dict[str, Any]:
    """Requests per second of `replicas` replicas under wrk (one per replica), each pinned to its
    core in `cores` (default: one core each, 0, 1, ...)."""
    cores = cores or list(range(replicas))
    with fleet(work / f"throughput-{replicas}-{'-'.join(map(str, cores))}", server) as group:
        started = group.start(replicas, cores=cores)
        bodies = questions.mix_bodies(400, "gpt-test", False, uuid.uuid4().hex[:6])
        lua = load.script(work / f"bodies-{replicas}.lua", bodies, {"X-App": "shop"}, "/v1/chat/completions")
        with httpx.Client(timeout=30) as client:  # every replica warm before the clock starts
            for replica in started:
                for _ in range(20):
                    ask(client, replica, "warm up", "warm").raise_for_status()
        cpu_before = [cpu_seconds(r.proc.pid) for r in started]
        helpers_before = cpu_seconds(group.upstream_pid) + postgres_cpu()
        wrks = [
            subprocess.Popen(
                [load.ensure_wrk(), "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(lua),
                 replica.base],
                stdout=subprocess.PIPE,
                text=True,
            )
            for replica in started
        ]  # fmt: skip
        results = []
        for wrk in wrks:
            out, _ = wrk.communicate(timeout=seconds + 60)
            line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
            results.append(json.loads(line[len("WRKJSON ") :]))
        replica_cpu = sum(cpu_seconds(r.proc.pid) for r in started) - sum(cpu_before)
        helpers_cpu = cpu_seconds(group.upstream_pid) + postgres_cpu() - helpers_before
    requests = sum(r["requests"] for r in results)
    rps = sum(r["requests"] / (r["duration_us"] / 1e6) for r in results)
    errors = sum(r["errors"] + r["non2xx"] for r in results)
    return {
        "replicas": replicas,
        "cores": cores,
        "rps": round(rps, 1),
        "errors": errors,
        "p50_ms": [r["p50_us"] / 1000 for r in results],
        # CPU per request: each replica's own, and the fake provider's + PostgreSQL's, which
        # share the same two cores on a small machine
        "replica_cpu_ms_per_request": round(replica_cpu / requests * 1000, 3),
        "provider_and_postgres_cpu_ms_per_request": round(helpers_cpu / requests * 1000, 3),
    }


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process on this machine (the server and its backends)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if "(postgres)" in stat.read_text():
                total += cpu_seconds(int(stat.parent.name))
    return total


def trail_write(server: str | None, rows: int) -> dict[str, Any]:
    """Interactions per second the writer's batches put into PostgreSQL (None: a SQLite file)."""
    name = f"lw_trail_{uuid.uuid4().hex[:12]}"
    if server is not None:
        pg_server.create_database(server, name)
    target = ["--database", pg_server.with_database(server, name)] if server is not None else []
    try:
        out = subprocess.run(
            [sys.executable, str(HERE / "trail_write.py"), *target, "--rows", str(rows), "--runs", "3", "--json"],
            capture_output=True, text=True, check=True, timeout=1800,
        ).stdout  # fmt: skip
        return dict(json.loads(out.strip().splitlines()[-1]))
    finally:
        if server is not None:
            pg_server.drop_database(server, name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", default=SERVER, help="the server each run makes its database on")
    parser.add_argument("--freshness", type=int, default=40, help="lessons taught on A and awaited on B")
    parser.add_argument("--seconds", type=int, default=8, help="seconds of load per throughput point")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections per replica")
    parser.add_argument("--trail-rows", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs")
    parser.add_argument("--work", type=Path, default=Path("/tmp/loopwise-replicas"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"machine": machine()}
    with fleet(args.work / "freshness", args.postgres) as group:
        group.start(2)
        report["freshness"] = freshness(group, args.freshness)
    print(json.dumps(report["freshness"]), flush=True)
    one = throughput(args.work, args.postgres, 1, args.seconds, args.connections)
    two = throughput(args.work, args.postgres, 2, args.seconds, args.connections)
    shared = throughput(args.work, args.postgres, 2, args.seconds, args.connections, cores=[0, 0])
    report["throughput"] = {
        "one": one,
        "two": two,
        "two_on_one_core": shared,
        "ratio": round(two["rps"] / one["rps"], 2),
        "cpu_per_request_two_on_one_core_vs_one": round(
            shared["replica_cpu_ms_per_request"] / one["replica_cpu_ms_per_request"], 2
        ),
    }
    print(json.dumps(report["throughput"]), flush=True)
    report["trail_write"] = {
        "postgresql": trail_write(args.postgres, args.trail_rows),
        "sqlite": trail_write(None, args.trail_rows),
    }
    print(json.dumps(report["trail_write"]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "replicas-bench.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
