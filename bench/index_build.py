"""Building the embedded index's graph while serving, through the product's own code: what a
search costs before, during and after a background build, whether the event loop and the index
updates stall meanwhile, and the same build run in-process (the old offline way) for contrast.

    python bench/index_build.py [--lessons 100000] [--inline] [--out docs/index-build.json]

A `--lessons` index of random unit vectors (what they say does not change what a search or a
build costs) is seeded without a graph. One thread searches every 20 ms (the model's thread, as
recall runs it); the event loop beats every 10 ms and records how late each beat was; every
100 ms a lesson is upserted or deleted on the index's thread, as the sync does. Phases: `before`
(5 s, no graph), `during` the build (copy + child process + swap), `after` (5 s). With
`--inline`, the build is then repeated on a fresh copy the old way, `optimize()` on a thread of
this process, and the same numbers are taken during it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import threading
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.recall_latency import stats
from bench.seed import DIMS, seed
from proxy.learning.index import LessonIndex
from proxy.vectors import Point
from proxy.vectors.edge import EdgeIndex

HERE = Path(__file__).resolve().parent
MUST = {"status": "active", "app": "bench", "tenant": ""}
PAUSE_S = 5.0
SEARCH_EVERY_S = 0.02  # recall's searches at 50 requests a second; Qdrant Edge's search holds the
# GIL (measured: two threads search no faster than one), so a thread searching without pause
# would stand for a load no proxy serves, and starve every other thread of it


def _stats(values: list[float]) -> dict[str, float]:
    return {"n": len(values), **stats(values)} if values else {"n": 0}


class Probe:
    """Search latency (model thread), event-loop lateness and update latency, per phase."""

    def __init__(self, index: EdgeIndex, lessons: LessonIndex) -> None:
        self.index, self.lessons = index, lessons
        self.phase = "before"
        self.samples: dict[str, dict[str, list[float]]] = {}
        self.stop = threading.Event()
        self.rng = np.random.default_rng(11)

    def _add(self, kind: str, ms: float) -> None:
        self.samples.setdefault(self.phase, {}).setdefault(kind, []).append(ms)

    def searching(self) -> None:
        queries = self.rng.standard_normal((64, DIMS)).astype(np.float32)
        i = 0
        while not self.stop.is_set():
            began = time.perf_counter()
            self.index.search(queries[i % 64].tolist(), MUST, 5, 0.3)
            self._add("search_ms", (time.perf_counter() - began) * 1000)
            i += 1
            time.sleep(SEARCH_EVERY_S)

    async def beating(self) -> None:
        while not self.stop.is_set():
            began = time.perf_counter()
            await asyncio.sleep(0.01)
            self._add("loop_late_ms", (time.perf_counter() - began) * 1000 - 10)

    async def updating(self) -> None:
        n = 0
        while not self.stop.is_set():
            vector = self.rng.standard_normal(DIMS).astype(np.float32)
            vector /= np.linalg.norm(vector)
            point = Point(str(uuid.uuid4()), vector.tolist(), {**MUST, "user_id": "", "correction": ""})
            began = time.perf_counter()
            if n % 2:
                await self.lessons.on_index_thread(partial(self.index.delete, [str(uuid.UUID(int=n + 1))]))
            else:
                await self.lessons.on_index_thread(partial(self.index.upsert, [point]))
            self._add("update_ms", (time.perf_counter() - began) * 1000)
            n += 1
            await asyncio.sleep(0.1)

    def report(self) -> dict[str, Any]:
        return {phase: {k: _stats(v) for k, v in kinds.items()} for phase, kinds in self.samples.items()}


async def _measure(index: EdgeIndex, build: str) -> dict[str, Any]:
    lessons = LessonIndex(index, embedder=None)  # type: ignore[arg-type]  # nothing is embedded
    probe = Probe(index, lessons)
    searcher = threading.Thread(target=probe.searching)
    searcher.start()
    loops = [asyncio.create_task(probe.beating()), asyncio.create_task(probe.updating())]
    outcome: dict[str, Any] = {"unindexed_before": index.unindexed()}
    try:
        await asyncio.sleep(PAUSE_S)
        probe.phase = "during"
        began = time.perf_counter()
        if build == "child":
            outcome["build"] = await lessons.build_graph(force=True)
            assert outcome["build"] is not None, lessons.graph.error
        else:
            await asyncio.to_thread(index.optimize)
        outcome["build_s"] = time.perf_counter() - began
        probe.phase = "after"
        await asyncio.sleep(PAUSE_S)
    finally:
        probe.stop.set()
        searcher.join()
        await asyncio.gather(*loops)
    outcome["unindexed_after"] = index.unindexed()
    outcome["phases"] = probe.report()
    lessons.close()
    return outcome


def _print(label: str, outcome: dict[str, Any]) -> None:
    print(f"{label}: build {outcome['build_s']:.1f} s; unindexed {outcome['unindexed_before']} -> "
          f"{outcome['unindexed_after']}; {outcome.get('build') or 'in-process'}")  # fmt: skip
    for phase, kinds in outcome["phases"].items():
        cells = [
            f"{k} p50 {v['p50']:.2f} p99 {v['p99']:.2f} max {v['max']:.1f} (n {v['n']})"
            for k, v in kinds.items() if v["n"]
        ]  # fmt: skip
        print(f"  {phase:>6}: " + "; ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lessons", type=int, default=100_000)
    parser.add_argument("--inline", action="store_true", help="also build in-process, for contrast")
    parser.add_argument("--cache", type=Path, default=HERE / ".cache")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    seeded = args.cache / f"graphless-{args.lessons}"
    if not (seeded / "complete").exists():
        shutil.rmtree(seeded, ignore_errors=True)
        print(f"seeding {args.lessons} lessons without a graph (once; cached in {seeded})", flush=True)
        seed(seeded, args.lessons, "bench", [], with_db=False, graph=False)
        (seeded / "complete").write_text("ok")
    results: dict[str, Any] = {"lessons": args.lessons}
    for build in ("child", "inline") if args.inline else ("child",):
        work = args.cache / f"graph-build-{build}"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(seeded, work)
        results[build] = asyncio.run(_measure(EdgeIndex(work / "vectors"), build))
        _print(f"{build} build", results[build])
        shutil.rmtree(work, ignore_errors=True)  # the generations built sit inside it too
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
