"""Both vector index implementations behave the same: upsert, scoped search, threshold, delete."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.vectors import Point, VectorIndex
from proxy.vectors.edge import EdgeIndex
from proxy.vectors.server import QdrantServerIndex

A, B, C = (
    "00000000-0000-0000-0000-00000000000a",
    "00000000-0000-0000-0000-00000000000b",
    "00000000-0000-0000-0000-00000000000c",
)


def payload(app: str, status: str = "active") -> dict[str, str]:
    return {"app": app, "status": status, "user_id": "", "tenant": "", "question": f"q-{app}"}


@pytest.fixture(params=["edge", "server"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> VectorIndex:
    if request.param == "edge":
        return EdgeIndex(tmp_path / "vectors", 3)
    return QdrantServerIndex(":memory:", "lessons", 3)


def test_search_filters_scope_and_applies_the_threshold(index: VectorIndex) -> None:
    index.upsert(
        [
            Point(A, [1, 0, 0], payload("shop")),
            Point(B, [0.9, 0.1, 0], payload("blog")),
            Point(C, [0, 1, 0], payload("shop")),
        ]
    )
    hits = index.search([1, 0, 0], {"app": "shop", "status": "active"}, 5, 0.5)
    assert [h.id for h in hits] == [A]
    assert hits[0].score == pytest.approx(1.0) and hits[0].payload["question"] == "q-shop"
    assert [h.id for h in index.search([1, 0, 0], {"app": "shop", "status": "active"}, 5, -1)] == [A, C]
    index.delete([A])
    assert index.search([1, 0, 0], {"app": "shop", "status": "active"}, 5, 0.5) == []
    assert index.count() == 2
    index.close()


def test_edge_index_persists_and_is_locked_while_open(tmp_path: Path) -> None:
    first = EdgeIndex(tmp_path / "v", 3)
    first.upsert([Point(A, [1, 0, 0], payload("shop"))])
    with pytest.raises(RuntimeError, match="another loopwise process"):
        EdgeIndex(tmp_path / "v", 3)
    first.close()
    again = EdgeIndex(tmp_path / "v", 3)
    assert [h.id for h in again.search([1, 0, 0], {"app": "shop"}, 3, 0.5)] == [A]
    again.close()
