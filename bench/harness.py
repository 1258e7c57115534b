"""Process plumbing for the benchmarks: pinned subprocesses, readiness, CPU time and memory."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(core: int | None, command: Sequence[str]) -> list[str]:
    return ["taskset", "-c", str(core), *command] if core is not None else list(command)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(c) for c in task.read_text().split()]
    return found


def tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        with contextlib.suppress(OSError):  # it exited meanwhile
            todo += _children(current)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants."""
    total = 0
    for member in tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def memory_mb(pid: int, field: str) -> float:
    """VmRSS (now) or VmHWM (peak) summed over a process tree, in MB."""
    total = 0
    for member in tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        match = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
        total += int(match.group(1)) if match else 0
    return total / 1024


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> float:
    """Seconds until `url` answers 200 (counted from the call); fails fast if the process died."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} was ready")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - began
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} not ready after {timeout} s")


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    base: str
    ready_s: float

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start(
    name: str,
    command: Sequence[str],
    ready_path: str,
    port: int,
    core: int | None,
    env: dict[str, str],
    log: Path,
) -> Server:
    with log.open("wb") as out:
        proc = subprocess.Popen(pinned(core, command), env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        ready = wait_ready(base + ready_path, proc)
    except RuntimeError:
        proc.kill()
        raise RuntimeError(f"{name} did not start; see {log}:\n{log.read_text()[-3000:]}") from None
    return Server(name, proc, base, ready)


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory_gb": f"{mem_kb / 1024 / 1024:.1f}",
        "kernel": os.uname().release,
    }
