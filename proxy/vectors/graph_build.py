"""The child process of a background graph build: `python -m proxy.vectors.graph_build DIR`.

It opens the copy a serving proxy made (`EdgeIndex.begin_build`), builds the HNSW graph there
and exits, printing one JSON line: points, points in the graph, seconds. Qdrant Edge's optimizer
holds the GIL for its whole run, so it runs here rather than in the proxy, at a lower CPU
priority than the requests the proxy serves meanwhile."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

from proxy.vectors.edge import EdgeIndex

NICENESS = 10


def build(directory: Path) -> dict[str, float]:
    began = time.perf_counter()
    index = EdgeIndex(directory)
    try:
        index.optimize()
        points, indexed = index.info()
    finally:
        index.close()
    return {"points": points, "indexed": indexed, "seconds": round(time.perf_counter() - began, 3)}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m proxy.vectors.graph_build DIR", file=sys.stderr)
        return 2
    with contextlib.suppress(OSError):  # not permitted: the build runs at the proxy's priority
        os.nice(NICENESS)
    print(json.dumps(build(Path(argv[0]))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
