"""Qdrant Edge (qdrant-edge-py): Qdrant's engine in-process, persisted under the data dir."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import qdrant_edge as qe

from proxy.vectors import FILTER_FIELDS, Hit, Point


class EdgeIndex:
    def __init__(self, path: Path, dims: int | None = None) -> None:
        """Open the index at `path`, or create it (that needs `dims`)."""
        self.path = path
        if (path / "edge_config.json").exists():
            try:
                self.shard = qe.EdgeShard.load(str(path))
            except Exception as exc:
                raise RuntimeError(
                    f"cannot open the vector index at {path} ({exc}); is another loopwise "
                    "process using this data_dir?"
                ) from exc
        else:
            if dims is None:
                raise RuntimeError(f"no vector index at {path}")
            path.mkdir(parents=True, exist_ok=True)
            config = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dims, distance=qe.Distance.Cosine))
            self.shard = qe.EdgeShard.create(str(path), config)
            for name in FILTER_FIELDS:
                self.shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))

    def upsert(self, points: Sequence[Point]) -> None:
        if points:
            self.shard.update(
                qe.UpdateOperation.upsert_points(
                    [qe.Point(p.id, list(p.vector), dict(p.payload)) for p in points]
                )
            )

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self.shard.update(qe.UpdateOperation.delete_points(list(ids)))

    def search(
        self, vector: Sequence[float], must: Mapping[str, str], limit: int, min_score: float
    ) -> list[Hit]:
        condition = qe.Filter(must=[qe.FieldCondition(k, match=qe.MatchValue(v)) for k, v in must.items()])
        found = self.shard.query(
            qe.QueryRequest(
                limit=limit,
                query=qe.Query.Nearest(list(vector)),
                filter=condition,
                with_payload=True,
                score_threshold=min_score,
            )
        )
        return [Hit(str(p.id), float(p.score), p.payload or {}) for p in found]

    def optimize(self) -> bool:
        """Build the HNSW graph for segments that lack one. Holds the GIL for its whole run
        (measured: a 100k-lesson build froze the calling process for ~100 s), so it is run
        offline with `loopwise index optimize`, never inside a serving proxy."""
        return bool(self.shard.optimize())

    def info(self) -> tuple[int, int]:
        """(points, points covered by the HNSW graph)."""
        info = self.shard.info()
        return int(info.points_count), int(info.indexed_vectors_count)

    def count(self) -> int:
        return int(self.shard.info().points_count)

    def close(self) -> None:
        self.shard.flush()
        self.shard.close()
