"""Qdrant Edge (qdrant-edge-py): Qdrant's engine in-process, persisted under the data dir.

Its graph (HNSW) is built without freezing the proxy: `begin_build` copies the serving files to
the next generation (see `generations`), a child process builds the graph there
(`proxy.vectors.graph_build`; Qdrant Edge's optimizer holds the GIL of whatever process runs
it), and `finish_build` opens the copy, replays what changed meanwhile, and swaps it in under
the searches, and `release` closes the old files."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from uuid import UUID

import qdrant_edge as qe

from proxy.vectors import FILTER_FIELDS, Hit, Point, generations

DRAIN_S = 30.0  # how long a swap waits for searches still on the old files before closing them
SPARE = 1.2  # free disk a build needs, against what the serving shard takes
log = logging.getLogger("loopwise.index")


class EdgeIndex:
    def __init__(self, root: Path, dims: int | None = None) -> None:
        """Open the index's current generation under `root`, or create it (that needs `dims`)."""
        self.root = root
        self.path = generations.current(root)
        self.shard = _open(self.path, dims)
        self._readers: dict[int, int] = {}  # id(shard) -> searches running on it
        self._swapped = threading.Condition()
        self._touched: set[str] | None = None  # ids changed since a build's copy was taken
        self._building: Path | None = None  # the copy a build works on
        self._built: qe.EdgeShard | None = None  # that copy, opened once its graph is built
        self._retired: list[tuple[qe.EdgeShard, Path]] = []  # swapped out, to be closed
        self._build = threading.RLock()  # one build step at a time, and closing waits for it

    def upsert(self, points: Sequence[Point]) -> None:
        self._touch(p.id for p in points)
        if points:
            self.shard.update(
                qe.UpdateOperation.upsert_points(
                    [qe.Point(p.id, list(p.vector), dict(p.payload)) for p in points]
                )
            )

    def delete(self, ids: Sequence[str]) -> None:
        self._touch(ids)
        if ids:
            self.shard.update(qe.UpdateOperation.delete_points(list(ids)))

    def search(
        self, vector: Sequence[float], must: Mapping[str, str], limit: int, min_score: float
    ) -> list[Hit]:
        condition = qe.Filter(must=[qe.FieldCondition(k, match=qe.MatchValue(v)) for k, v in must.items()])
        with self._reading() as shard:
            found = shard.query(
                qe.QueryRequest(
                    limit=limit,
                    query=qe.Query.Nearest(list(vector)),
                    filter=condition,
                    with_payload=True,
                    score_threshold=min_score,
                )
            )
        return [Hit(str(p.id), float(p.score), p.payload or {}) for p in found]

    @contextmanager
    def _reading(self) -> Iterator[qe.EdgeShard]:
        """The serving shard, counted while a search uses it, so a swap closes the old one only
        once its searches are done (searches run on the model's thread, updates on the index's)."""
        with self._swapped:
            shard = self.shard
            self._readers[id(shard)] = self._readers.get(id(shard), 0) + 1
        try:
            yield shard
        finally:
            with self._swapped:
                self._readers[id(shard)] -= 1
                self._swapped.notify_all()

    def _idle(self, shard: int) -> bool:
        return not self._readers.get(shard)

    def _touch(self, ids: Iterator[str] | Sequence[str]) -> None:
        touched = self._touched  # read once: a build on another thread may end meanwhile
        if touched is not None:
            touched.update(ids)

    def optimize(self) -> bool:
        """Build the HNSW graph in this process, for segments that lack one. Holds the GIL for
        its whole run (measured: a 100k-lesson build froze the calling process for ~100 s): the
        CLI runs it offline, the child process of a background build on its copy."""
        return bool(self.shard.optimize())

    def unindexed(self) -> int:
        """Points a search scans one by one, outside the graph."""
        points, indexed = self.info()
        return max(0, points - indexed)

    def begin_build(self) -> Path:
        """Copy the serving shard into a new generation and start noting every id changed from
        now on; the graph is then built on the copy (`graph_build`), `open_build` opens it and
        `finish_build` swaps it in. Runs on the thread that makes the updates, so none lands
        mid-copy (measured: a 100k-lesson index copies in 0.35 s, while searches go on).
        Refused, with nothing written, when the disk cannot hold a second copy."""
        with self._build:
            if self._building is not None:
                raise RuntimeError(f"a graph build is already running in {self._building}")
            needed = generations.shard_bytes(self.path) * SPARE
            free = shutil.disk_usage(self.root).free
            if free < needed:
                raise RuntimeError(f"{free} bytes free, {needed:.0f} needed for the build's copy")
            target = generations.new_generation(self.root)
            try:
                self.shard.flush()
                generations.copy_shard(self.path, target)
            except BaseException:
                generations.remove(self.root, target)
                raise
            self._building, self._touched = target, set()
            return target

    def open_build(self) -> None:
        """Open the built copy (on any thread: loading it holds up neither searches nor updates)."""
        with self._build:
            if self._building is None or self._built is not None:
                raise RuntimeError("no graph build is waiting to be opened")
            try:
                self._built = _open(self._building, None)
            except BaseException:
                self._abandon()
                raise

    def finish_build(self) -> int:
        """Replay onto the opened copy the ids changed since it was taken (their state now, read
        from the serving files), flush it, make it current on disk and then swap it in under the
        searches; returns how many ids were replayed. On the updating thread, as `begin_build`.
        If any step fails, the old generation goes on serving and stays current. `release`
        then closes the old files."""
        with self._build:
            target, built, touched = self._building, self._built, sorted(self._touched or ())
            if target is None or built is None:
                raise RuntimeError("no opened graph build to swap in")
            try:
                _replay(self.shard, built, touched)
                built.flush()
                generations.promote(self.root, target)
            except BaseException:
                self._abandon()
                raise
            with self._swapped:
                self._retired.append((self.shard, self.path))
                self.shard, self.path = built, target
                self._building = self._built = self._touched = None
            return len(touched)

    def release(self) -> None:
        """Close the generations a build swapped out once the searches still on them are done,
        and delete their files (on any thread). One a search still holds after `DRAIN_S` is
        left open (and its files on disk) rather than closed under the search."""
        with self._build:
            while self._retired:
                old, old_path = self._retired.pop()
                held = id(old)
                with self._swapped:
                    idle = self._swapped.wait_for(partial(self._idle, held), timeout=DRAIN_S)
                    if not idle:
                        log.warning("a search still holds %s after %.0f s; left open", old_path, DRAIN_S)
                        continue
                    self._readers.pop(held, None)
                old.close()
                generations.remove(self.root, old_path)

    def abandon_build(self) -> None:
        """Forget a build (the child failed, or the proxy stops): its copy is closed and removed."""
        with self._build:
            self._abandon()

    def _abandon(self) -> None:
        target, built = self._building, self._built
        self._building = self._built = self._touched = None
        if built is not None:
            built.close()
        if target is not None:
            generations.remove(self.root, target)

    def info(self) -> tuple[int, int]:
        """(points, points covered by the HNSW graph)."""
        info = self.shard.info()
        return int(info.points_count), int(info.indexed_vectors_count)

    def count(self) -> int:
        return int(self.shard.info().points_count)

    def ids(self) -> list[str]:
        found: list[str] = []
        offset = None
        while True:
            page, offset = self.shard.scroll(
                qe.ScrollRequest(offset=offset, limit=1024, with_payload=False, with_vector=False)
            )
            found += [str(r.id) for r in page]
            if offset is None:
                return found

    def close(self) -> None:
        self.abandon_build()
        self.release()
        self.shard.flush()
        self.shard.close()


def _open(path: Path, dims: int | None) -> qe.EdgeShard:
    if (path / "edge_config.json").exists():
        try:
            return qe.EdgeShard.load(str(path))
        except Exception as exc:
            raise RuntimeError(
                f"cannot open the vector index at {path} ({exc}); is another loopwise "
                "process using this data_dir?"
            ) from exc
    if dims is None:
        raise RuntimeError(f"no vector index at {path}")
    path.mkdir(parents=True, exist_ok=True)
    config = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dims, distance=qe.Distance.Cosine))
    shard = qe.EdgeShard.create(str(path), config)
    for name in FILTER_FIELDS:
        shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))
    return shard


def _replay(source: qe.EdgeShard, target: qe.EdgeShard, ids: Sequence[str], batch: int = 512) -> None:
    """Bring `ids` in `target` to their state in `source`: present there, upserted with its
    vector and payload; gone there, deleted."""
    for start in range(0, len(ids), batch):
        chunk: list[int | UUID | str] = list(ids[start : start + batch])
        found = [r for r in source.retrieve(chunk, True, True) if r.vector is not None]
        present = {str(r.id) for r in found}
        if found:
            upserts = [qe.Point(r.id, r.vector, r.payload or {}) for r in found if r.vector is not None]
            target.update(qe.UpdateOperation.upsert_points(upserts))
        gone: list[int | UUID | str] = [i for i in chunk if str(i) not in present]
        if gone:
            target.update(qe.UpdateOperation.delete_points(gone))
