"""qdrant-client: a Qdrant server or cluster (`vector_store.url`), or `:memory:` in tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from qdrant_client import QdrantClient, models

from proxy.vectors import FILTER_FIELDS, Hit, Point


class QdrantServerIndex:
    def __init__(self, url: str, collection: str, dims: int, api_key: str | None = None) -> None:
        if url == ":memory:":
            self.client = QdrantClient(location=":memory:")
        else:
            self.client = QdrantClient(url=url, api_key=api_key)
        self.collection = collection
        if not self.client.collection_exists(collection):
            self.client.create_collection(
                collection,
                vectors_config=models.VectorParams(size=dims, distance=models.Distance.COSINE),
            )
            if url != ":memory:":
                for name in FILTER_FIELDS:
                    self.client.create_payload_index(collection, name, models.PayloadSchemaType.KEYWORD)

    def upsert(self, points: Sequence[Point]) -> None:
        if points:
            self.client.upsert(
                self.collection,
                [models.PointStruct(id=p.id, vector=list(p.vector), payload=dict(p.payload)) for p in points],
            )

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self.client.delete(self.collection, models.PointIdsList(points=list(ids)))

    def search(
        self, vector: Sequence[float], must: Mapping[str, str], limit: int, min_score: float
    ) -> list[Hit]:
        condition = models.Filter(
            must=[models.FieldCondition(key=k, match=models.MatchValue(value=v)) for k, v in must.items()]
        )
        found = self.client.query_points(
            self.collection,
            query=list(vector),
            query_filter=condition,
            limit=limit,
            score_threshold=min_score,
            with_payload=True,
        ).points
        return [Hit(str(p.id), float(p.score), p.payload or {}) for p in found]

    def count(self) -> int:
        return int(self.client.count(self.collection).count)

    def close(self) -> None:
        self.client.close()
