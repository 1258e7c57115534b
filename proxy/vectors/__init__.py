"""The vector index protocol: Qdrant Edge (embedded) and a Qdrant server implement it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

FILTER_FIELDS = ("status", "app", "tenant", "user_id")


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Point:
    id: str
    vector: Sequence[float]
    payload: Mapping[str, Any]


class VectorIndex(Protocol):
    """Small and synchronous: callers run it on their own worker thread."""

    def upsert(self, points: Sequence[Point]) -> None: ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def search(
        self, vector: Sequence[float], must: Mapping[str, str], limit: int, min_score: float
    ) -> list[Hit]: ...

    def count(self) -> int: ...

    def close(self) -> None: ...
