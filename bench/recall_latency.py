"""Recall alone, through the product's own code: the embedder, Qdrant Edge and `recall()`, with
the app scope filter, at growing lesson counts (indexes built once and cached)."""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from bench.questions import LESSONS, PARAPHRASES, UNRELATED
from bench.seed import seed
from policies import RecallConfig
from proxy.chat.recall import recall
from proxy.chat.request import Identity
from proxy.embeddings import FastEmbedder
from proxy.learning.index import LessonIndex
from proxy.settings import EmbeddingSettings
from proxy.vectors.edge import EdgeIndex

QUERIES = 300


def _embedder(cache: Path) -> FastEmbedder:
    return FastEmbedder(EmbeddingSettings(cache_size=0), cache / "models")


def embed_lessons(cache: Path) -> list[tuple[str, str, list[float]]]:
    """The benchmark's real lessons, embedded with the product's model (cached on disk)."""
    stored = cache / "lessons.json"
    if stored.exists():
        return [(q, c, v) for q, c, v in json.loads(stored.read_text())]

    async def run() -> list[tuple[str, str, list[float]]]:
        embedder = _embedder(cache)
        await embedder.start()
        try:
            return [(q, c, await embedder.embed(q)) for q, c in LESSONS]
        finally:
            embedder.close()

    found = asyncio.run(run())
    stored.write_text(json.dumps(found))
    return found


def built_index(size: int, cache: Path, real: list[tuple[str, str, list[float]]]) -> Path:
    where = cache / f"recall-{size}"
    if not (where / "complete").exists():
        shutil.rmtree(where, ignore_errors=True)
        print(f"  building a {size}-lesson index (once; cached in {where})...", flush=True)
        timings = seed(where, size, "bench", real, with_db=False)
        (where / "complete").write_text(json.dumps(timings))
    return where


def stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": statistics.median(ordered), "p90": pick(0.90), "p99": pick(0.99), "max": ordered[-1]}


def measure_recall(size: int, cache: Path, real: list[tuple[str, str, list[float]]]) -> dict[str, Any]:
    where = built_index(size, cache, real)

    async def run() -> dict[str, Any]:
        embedder = _embedder(cache)
        await embedder.start()
        index = LessonIndex(EdgeIndex(where / "vectors", embedder.dims), embedder)
        identity = Identity(None, None, None, "bench", None, {})
        config = RecallConfig()
        totals, embeds, searches, found = [], [], [], 0
        try:
            for i in range(QUERIES):
                pool = PARAPHRASES if i % 2 == 0 else UNRELATED
                text = f"{pool[(i // 2) % len(pool)]} (case {i})"
                result = await recall(embedder, index, text, identity, config)
                assert result.status == "ok", result
                totals.append(result.ms or 0.0)
                found += bool(result.lessons)
                began = time.perf_counter()
                vector = await embedder.embed(text + " again")
                embeds.append((time.perf_counter() - began) * 1000)
                began = time.perf_counter()
                await index.search(
                    vector, {"status": "active", "app": "bench"}, config.top_k, config.min_score
                )
                searches.append((time.perf_counter() - began) * 1000)
        finally:
            index.close()
            embedder.close()
        return {
            "lessons": size,
            "recall_ms": stats(totals),
            "embed_ms": stats(embeds),
            "search_ms": stats(searches),
            "queries_with_lessons": found / QUERIES,
            "built": json.loads((where / "complete").read_text()),
        }

    outcome = asyncio.run(run())
    r = outcome["recall_ms"]
    print(f"  {size:>8} lessons: recall p50 {r['p50']:.2f} ms  p99 {r['p99']:.2f} ms", flush=True)
    return outcome
