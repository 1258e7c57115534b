"""The child process of a background graph build: `python -m proxy.vectors.graph_build DIR PARENT_PID`.

It opens the copy a serving proxy made (`EdgeIndex.begin_build`), builds the HNSW graph there
and exits, printing one JSON line: points, points in the graph, seconds. Qdrant Edge's optimizer
holds the GIL for its whole run, so it runs here rather than in the proxy, at a lower CPU
priority than the requests the proxy serves meanwhile."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import time
from pathlib import Path

from proxy.vectors.edge import EdgeIndex

NICENESS = 10
PR_SET_PDEATHSIG = 1


def build(directory: Path) -> dict[str, float]:
    began = time.perf_counter()
    index = EdgeIndex(directory)
    try:
        index.optimize()
        points, indexed = index.info()
    finally:
        index.close()
    return {"points": points, "indexed": indexed, "seconds": round(time.perf_counter() - began, 3)}


def _die_with(parent: int) -> None:
    """Ask Linux to kill this process when the proxy dies (PR_SET_PDEATHSIG: the optimizer
    holds the GIL, so no watcher thread of ours could run), and stop now if it already has."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        sys.exit(3)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: python -m proxy.vectors.graph_build DIR PARENT_PID", file=sys.stderr)
        return 2
    _die_with(int(argv[1]))
    with contextlib.suppress(OSError):  # not permitted: the build runs at the proxy's priority
        os.nice(NICENESS)
    print(json.dumps(build(Path(argv[0]))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
