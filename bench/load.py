"""wrk as the load generator: a Lua script that rotates through request bodies and prints JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.harness import pinned

LUA = """
local bodies = {%(bodies)s}
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(headers)s
request = function()
  n = n + 1
  return wrk.format(nil, "%(path)s", nil, bodies[(n %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "errors": %%d, "non2xx": %%d, ' ..
    '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "mean_us": %%f}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    raise SystemExit(
        "wrk is needed: install it with `apt-get install wrk` (Debian/Ubuntu) or your package manager"
    )


def script(path: Path, bodies: Sequence[bytes], headers: dict[str, str], url_path: str) -> Path:
    quoted = ",\n".join(f"[==[{b.decode()}]==]" for b in bodies)
    header_lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    path.write_text(LUA % {"bodies": quoted, "headers": header_lines, "path": url_path})
    return path


def run(base: str, lua: Path, connections: int, seconds: int, core: int | None) -> dict[str, Any]:
    command = pinned(
        core,
        [ensure_wrk(), "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(lua), base],
    )
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    result: dict[str, Any] = json.loads(line[len("WRKJSON ") :])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result
