"""Recall's cheap first stage: the static vector of every active lesson's question, per app and
tenant, in an in-memory HNSW index (usearch, int8), so that a turn nothing like any lesson, or in
a scope with no lessons at all, never pays for the model.

It follows the lesson index: `LessonIndex` adds and removes lessons here as it syncs (on the
event loop; one add is well under a millisecond), and builds it whole at start on a worker thread
(usearch releases the GIL), replaying what changed meanwhile. Until that build is installed the
gate knows nothing and rules nothing out. Per process, like the embedded index; rebuilt from the
trail DB at every start, so it is never out of step for long.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from usearch.index import Index

from proxy.embeddings.static import StaticModel, Windows

Scope = tuple[str, str]  # (app, tenant or "")
# Up to this many lessons a scope is searched exactly (int8 brute force, measured ~0.05 ms per
# window per thousand lessons); past it, through the HNSW graph (~0.2 ms per window at 100k).
# Exact where it is cheap because the graph can miss: among 20k near-identical lessons, a search
# with a narrow beam (16) missed the lesson that mattered in 3 searches of 4 (bench/recall_stages.py).
EXACT_UP_TO = 2_000


@dataclass
class _ScopeIndex:
    index: Index
    ids: dict[int, str] = field(default_factory=dict)  # usearch key -> lesson id
    next_key: int = 0


@dataclass(frozen=True)
class _Entry:
    scope: Scope
    key: int
    question: str


class Gate:
    def __init__(self, static: StaticModel, window_tokens: int) -> None:
        self.static = static
        self.window_tokens = window_tokens
        self.closed = False  # set at shutdown: a build in progress stops at its next batch
        self._scopes: dict[Scope, _ScopeIndex] = {}
        self._entries: dict[str, _Entry] = {}
        self._pending: dict[str, tuple[Scope, str] | None] | None = {}  # changes until built
        self.ready = False

    def lessons_in(self, app: str, tenant: str) -> int | None:
        """How many active lessons the scope holds, or None while the gate is being built."""
        if not self.ready:
            return None
        found = self._scopes.get((app, tenant))
        return len(found.ids) if found is not None else 0

    def windows(self, text: str) -> Windows:
        return self.static.windows(text, self.window_tokens)

    def best(self, app: str, tenant: str, vectors: np.ndarray) -> tuple[float, int] | None:
        """The best static similarity of any of `vectors` (a turn's windows) to a lesson of the
        scope, and which window had it; None when the scope has no lessons (or while building)."""
        found = self._scopes.get((app, tenant)) if self.ready else None
        if found is None or not found.ids:
            return None
        matches = found.index.search(vectors, 1, threads=1, exact=len(found.ids) <= EXACT_UP_TO)
        distances = np.asarray(matches.distances, dtype=np.float32).reshape(len(vectors), -1)[:, 0]
        window = int(np.argmin(distances))
        return 1.0 - float(distances[window]), window

    def add(self, lesson_id: str, app: str, tenant: str, question: str) -> None:
        if self._pending is not None:
            self._pending[lesson_id] = ((app, tenant), question)
            return
        vector = self.static.embed([question])[0]
        self._add(self._scopes, self._entries, lesson_id, (app, tenant), question, vector)

    def remove(self, lesson_id: str) -> None:
        if self._pending is not None:
            self._pending[lesson_id] = None
            return
        entry = self._entries.pop(lesson_id, None)
        if entry is not None:
            scope = self._scopes[entry.scope]
            scope.index.remove(entry.key)
            scope.ids.pop(entry.key, None)

    def build(self, lessons: Iterable[tuple[str, str, str, str]], batch: int = 1024) -> Built:
        """Every (lesson id, app, tenant, question) indexed in new structures (blocking: run it on
        a worker thread); `install` swaps them in."""
        scopes: dict[Scope, _ScopeIndex] = {}
        entries: dict[str, _Entry] = {}
        chunk: list[tuple[str, str, str, str]] = []
        for item in [*lessons, None]:
            if item is not None:
                chunk.append(item)
            if chunk and (item is None or len(chunk) >= batch):
                if self.closed:
                    raise RuntimeError("the proxy is shutting down")
                vectors = self.static.embed([question for _, _, _, question in chunk])
                for (lesson_id, app, tenant, question), vector in zip(chunk, vectors, strict=True):
                    self._add(scopes, entries, lesson_id, (app, tenant), question, vector)
                chunk = []
        return Built(scopes, entries)

    def install(self, built: Built) -> None:
        """Swap in a build, then apply what changed while it ran (on the event loop)."""
        self._scopes, self._entries = built.scopes, built.entries
        pending, self._pending = self._pending or {}, None
        self.ready = True
        for lesson_id, change in pending.items():
            if change is None:
                self.remove(lesson_id)
            else:
                self.add(lesson_id, change[0][0], change[0][1], change[1])

    def _add(
        self,
        scopes: dict[Scope, _ScopeIndex],
        entries: dict[str, _Entry],
        lesson_id: str,
        scope: Scope,
        question: str,
        vector: np.ndarray,
    ) -> None:
        known = entries.get(lesson_id)
        if known is not None and known.scope == scope and known.question == question:
            return  # already there as it is (a resync of an unchanged lesson)
        if known is not None:
            old = scopes[known.scope]
            old.index.remove(known.key)
            old.ids.pop(known.key, None)
        target = scopes.get(scope)
        if target is None:
            target = scopes[scope] = _ScopeIndex(
                Index(ndim=self.static.dims, metric="cos", dtype="i8", connectivity=16)
            )
        key, target.next_key = target.next_key, target.next_key + 1
        target.index.add(key, vector, threads=1)
        target.ids[key] = lesson_id
        entries[lesson_id] = _Entry(scope, key, question)


@dataclass(frozen=True)
class Built:
    scopes: dict[Scope, _ScopeIndex]
    entries: dict[str, _Entry]
