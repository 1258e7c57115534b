"""Recall's cheap first stage: every active lesson's model vector, per app and tenant, in an
in-memory HNSW index (usearch, int8), searched with a turn's windows mapped from their static
vectors into the model's space (`Projection`), so that a turn nothing like any lesson, or in a
scope with no lessons at all, never pays for the model. Its threshold is calibrated as it runs
(`Calibration`).

It follows the lesson index: `LessonIndex` adds and removes lessons here as it syncs (on the
event loop; one add is well under a millisecond), and builds it whole at start on a worker thread
(usearch releases the GIL), replaying what changed meanwhile. Until that build is installed the
gate knows nothing and rules nothing out. Per process, like the embedded index: each replica
learns its own map.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from usearch.index import Index

from proxy.embeddings.static import StaticModel, Windows
from proxy.learning.calibration import Calibration
from proxy.learning.projection import Projection

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
    fingerprint: int  # of the vector: a resync of an unchanged lesson changes nothing


@dataclass(frozen=True)
class Built:
    scopes: dict[Scope, _ScopeIndex]
    entries: dict[str, _Entry]


class Gate:
    def __init__(self, static: StaticModel, window_tokens: int) -> None:
        if static.prior is None:
            raise ValueError("the static model has no vocabulary prior to start the gate's map from")
        self.static = static
        self.window_tokens = window_tokens
        self.projection = Projection(static.prior)
        self._calibrations: dict[Scope, Calibration] = {}
        self.closed = False  # set at shutdown: a build in progress stops at its next batch
        self._scopes: dict[Scope, _ScopeIndex] = {}
        self._entries: dict[str, _Entry] = {}
        self._pending: dict[str, tuple[Scope, Sequence[float]] | None] | None = {}  # until built

    @property
    def ready(self) -> bool:
        """Installed: it holds every lesson (before, it records what changes, for `install`)."""
        return self._pending is None

    def lessons_in(self, app: str, tenant: str) -> int | None:
        """How many active lessons the scope holds, or None while the gate is being built."""
        if not self.ready:
            return None
        found = self._scopes.get((app, tenant))
        return len(found.ids) if found is not None else 0

    def windows(self, text: str) -> Windows:
        return self.static.windows(text, self.window_tokens)

    def best(self, app: str, tenant: str, windows: Windows) -> tuple[float, int] | None:
        """The best predicted similarity of any window to a lesson of the scope, and which
        window had it; None when the scope has no lessons (or while building)."""
        found = self._scopes.get((app, tenant)) if self.ready else None
        if found is None or not found.ids:
            return None
        queries = self.projection.project(windows.vectors)
        matches = found.index.search(queries, 1, threads=1, exact=len(found.ids) <= EXACT_UP_TO)
        distances = np.asarray(matches.distances, dtype=np.float32).reshape(len(queries), -1)[:, 0]
        distances = np.where(np.isfinite(distances), distances, 2.0)  # no match: the worst score
        window = int(np.argmin(distances))
        return 1.0 - float(distances[window]), window

    def calibration(self, app: str, tenant: str) -> Calibration:
        """The scope's own threshold (created with a scope's first model run, so there are as
        many as scopes with lessons): one app's traffic (a flood of exact repeats, say) never
        moves where another's turns are ruled out. The map is shared; it only learns true
        (static, model) pairs."""
        found = self._calibrations.get((app, tenant))
        if found is None:
            found = self._calibrations[(app, tenant)] = Calibration()
        return found

    def learn(
        self,
        scope: Scope,
        static: np.ndarray,
        model: Sequence[float],
        score: float,
        matched: bool,
        explored: bool,
        version: int,
    ) -> None:
        """What one model run taught: a (static, model) pair for the map, and a sample for the
        scope's threshold (scored with map `version`)."""
        self.calibration(*scope).record(score, matched, explored, version)
        self.projection.observe(static, np.asarray(model, dtype=np.float32))

    def add(self, lesson_id: str, app: str, tenant: str, vector: Sequence[float]) -> None:
        if self._pending is not None:
            self._pending[lesson_id] = ((app, tenant), vector)
            return
        self._add(self._scopes, self._entries, lesson_id, (app, tenant), vector)

    def remove(self, lesson_id: str) -> None:
        if self._pending is not None:
            self._pending[lesson_id] = None
            return
        entry = self._entries.pop(lesson_id, None)
        if entry is not None:
            _drop(self._scopes, entry)

    def build(self, lessons: Iterable[tuple[str, str, str, Sequence[float] | bytes]]) -> Built:
        """Every (lesson id, app, tenant, model vector, or its float32 bytes) indexed in new
        structures (blocking: run it on a worker thread); `install` swaps them in."""
        scopes: dict[Scope, _ScopeIndex] = {}
        entries: dict[str, _Entry] = {}
        for n, (lesson_id, app, tenant, vector) in enumerate(lessons):
            if n % 1024 == 0 and self.closed:
                raise RuntimeError("the proxy is shutting down")
            values = np.frombuffer(vector, dtype=np.float32) if isinstance(vector, bytes) else vector
            self._add(scopes, entries, lesson_id, (app, tenant), values)
        return Built(scopes, entries)

    def install(self, built: Built) -> None:
        """Swap in a build, then apply what changed while it ran (on the event loop)."""
        self._scopes, self._entries = built.scopes, built.entries
        pending, self._pending = self._pending or {}, None
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
        vector: Sequence[float] | np.ndarray,
    ) -> None:
        values = np.asarray(vector, dtype=np.float32)
        fingerprint = hash(values.tobytes())
        reduced = self.projection.reduce(values)[0]
        known = entries.get(lesson_id)
        if known is not None and known.scope == scope and known.fingerprint == fingerprint:
            return
        if known is not None:  # replaced: an edit, or a move to another scope
            _drop(scopes, known)
        target = scopes.get(scope)
        if target is None:
            target = scopes[scope] = _ScopeIndex(
                Index(ndim=len(reduced), metric="cos", dtype="i8", connectivity=16)
            )
        key, target.next_key = target.next_key, target.next_key + 1
        target.index.add(key, reduced, threads=1)
        target.ids[key] = lesson_id
        entries[lesson_id] = _Entry(scope, key, fingerprint)


def _drop(scopes: dict[Scope, _ScopeIndex], entry: _Entry) -> None:
    found = scopes[entry.scope]
    found.index.remove(entry.key)
    found.ids.pop(entry.key, None)
