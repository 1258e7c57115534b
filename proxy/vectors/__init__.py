"""The vector index protocol: Qdrant Edge (embedded) and a Qdrant server implement it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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


@runtime_checkable
class ListsIds(Protocol):
    """An index that can list what it holds (to drop what its DB does not have)."""

    def ids(self) -> list[str]: ...


@runtime_checkable
class GraphBuilds(Protocol):
    """An index whose graph the proxy builds itself, in the background (Qdrant Edge; a Qdrant
    server builds its own): `begin_build` and `finish_build` run on the index's updating thread,
    `open_build` and `release` on any."""

    def unindexed(self) -> int: ...

    def begin_build(self) -> Path: ...

    def open_build(self) -> None: ...

    def finish_build(self) -> int: ...

    def release(self) -> None: ...

    def abandon_build(self) -> None: ...
