"""Async access to the trail: one DB thread, and a writer that batches interaction rows; and
reader threads with connections of their own for the long reads (console pages, reports), which
WAL lets run while the DB thread commits, so a report never holds up the trail or a feedback.

The request path only enqueues (`record`); the writer commits batches in the background. Every
`run()` and `read()` first waits for the rows queued before it, so a read or a feedback always
sees each interaction already answered, and no caller has to remember to flush.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TypeVar

from proxy.records import Interaction
from proxy.storage.db import connect, is_transient, is_url, read_only
from proxy.storage.repo import TrailRepo

T = TypeVar("T")
log = logging.getLogger("loopwise.trail")
BATCH = 256
READERS = 2  # reader threads: two report queries of one page run side by side


def unprepared(interaction: Interaction, reason: str) -> Interaction:
    """A row whose text could not be made safe to store: its ids, times and counts alone."""
    return replace(
        interaction, request={"unrecordable": reason}, sent_messages=[], response=None, question="",
        response_text="", chat_messages=None, error=None,
    )  # fmt: skip


RETRIES = 9  # a batch waits about 2 minutes in all for a database that went away (a failover)
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0


def _insert(repo: TrailRepo, batch: list[Interaction]) -> Exception | None:
    try:
        repo.insert_interactions(batch)
    except Exception as exc:  # noqa: BLE001 - the caller decides: wait, or isolate row by row
        return exc
    return None


class TrailDB:
    def __init__(self, path: Path | str, prepare: Callable[[Interaction], Interaction] | None = None) -> None:
        """`path`: a SQLite file, or a PostgreSQL URL. `prepare` runs on each interaction on the
        DB thread, before it is stored (redaction)."""
        self._prepare = prepare
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loopwise-db")
        self._path = path
        self._repo: TrailRepo | None = None
        self._readers = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="loopwise-db-read")
        self._reader_local = threading.local()
        self._reader_repos: list[TrailRepo] = []
        self._queue: asyncio.Queue[Interaction | asyncio.Future[None]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._unwritten = 0  # interactions queued and not yet committed
        self.write_errors = 0
        self.last_write_error_at: float | None = None

    async def open(self) -> None:
        self._repo = await asyncio.get_running_loop().run_in_executor(
            self._executor, lambda: TrailRepo(connect(self._path))
        )
        self._writer = asyncio.create_task(self._write_loop(), name="loopwise-trail-writer")

    async def _on_thread(self, fn: Callable[[TrailRepo], T]) -> T:
        repo = self._repo
        if repo is None:
            raise RuntimeError("trail DB is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, repo)

    async def run(self, fn: Callable[[TrailRepo], T]) -> T:
        """Run ``fn(repo)`` on the DB thread, after every interaction recorded so far is written."""
        if self._unwritten:
            await self.flush()
        return await self._on_thread(fn)

    def _reader(self) -> TrailRepo:
        """This reader thread's own connection, opened on first use, refusing any write."""
        repo: TrailRepo | None = getattr(self._reader_local, "repo", None)
        if repo is None and is_url(self._path) and self._reader_repos:
            repo = self._reader_repos[0]  # one read-only pool, shared by the reader threads
        if repo is None:
            repo = TrailRepo(connect(self._path, readonly=is_url(self._path), pool=READERS))
            read_only(repo.conn)
            self._reader_repos.append(repo)
        self._reader_local.repo = repo
        return repo

    async def read(self, fn: Callable[[TrailRepo], T]) -> T:
        """Run the read-only ``fn(repo)`` on a reader thread, after every interaction recorded so
        far is written. A write there fails (the connection is `query_only`): use `run()`."""
        if self._unwritten:
            await self.flush()
        return await self.read_now(fn)

    async def read_now(self, fn: Callable[[TrailRepo], T]) -> T:
        """`read`, without waiting for the interactions queued for the writer: for the request
        path, reading what the trail's queue does not hold (a user's preferences)."""
        if self._repo is None:
            raise RuntimeError("trail DB is not open")
        return await asyncio.get_running_loop().run_in_executor(self._readers, lambda: fn(self._reader()))

    def record(self, interaction: Interaction) -> None:
        """Queue an interaction for the writer; never waits on disk."""
        self._unwritten += 1
        self._queue.put_nowait(interaction)

    async def flush(self) -> None:
        """Wait until everything recorded so far is committed."""
        if self._writer is None or self._writer.done():
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(done)
        await done

    async def _write_loop(self) -> None:
        while True:
            first = await self._queue.get()
            items = [first]
            while len(items) < BATCH and not self._queue.empty():
                items.append(self._queue.get_nowait())
            batch = [i for i in items if isinstance(i, Interaction)]
            if batch:
                await self._write(batch)
                self._unwritten -= len(batch)
            for item in items:
                if isinstance(item, asyncio.Future) and not item.done():
                    item.set_result(None)

    async def _write(self, batch: list[Interaction]) -> None:
        """One commit for the batch. If the database failed (its connection, a failover, a
        deadlock), the batch is tried again as it is, waiting longer each time, for about 2
        minutes; if a row failed, row by row, so one bad row costs no other its place; a row
        that cannot be stored as it is is stored without its payloads."""

        def prepare_and_insert(repo: TrailRepo) -> tuple[list[Interaction], Exception | None]:
            prepared = [self._prepared(i) for i in batch] if self._prepare is not None else batch
            return prepared, _insert(repo, prepared)

        prepared, failed = await self._on_thread(prepare_and_insert)  # one hop to the DB thread
        for attempt in range(RETRIES):  # the database, not a row, failed: the batch waits for it
            if failed is None or not is_transient(failed):
                break
            pause = min(RETRY_MAX_S, RETRY_FIRST_S * 2**attempt)
            log.warning(
                "trail write failed (%s); %d rows wait %.1f s", type(failed).__name__, len(prepared), pause
            )
            await asyncio.sleep(pause)
            failed = await self._on_thread(partial(_insert, batch=prepared))
        if failed is not None:
            for interaction in prepared:
                await self._write_alone(interaction)

    def _prepared(self, interaction: Interaction) -> Interaction:
        """The row as `prepare` (redaction) makes it; if that fails, without any text at all:
        what could not be redacted is not stored."""
        assert self._prepare is not None
        try:
            return self._prepare(interaction)
        except Exception as exc:
            log.exception("could not prepare interaction %s; its payloads are not stored", interaction.id)
            return unprepared(interaction, f"not stored: {type(exc).__name__}")

    async def _write_alone(self, interaction: Interaction) -> None:
        try:
            await self._on_thread(partial(TrailRepo.insert_interactions, batch=[interaction]))
            return
        except Exception as exc:  # noqa: BLE001 - stored without payloads below
            reason = f"{type(exc).__name__}: {exc}"[:500]
        stripped = replace(interaction, request={"unrecordable": reason}, sent_messages=[], response=None)
        try:
            await self._on_thread(partial(TrailRepo.insert_interactions, batch=[stripped]))
            log.warning("interaction %s stored without its payloads: %s", interaction.id, reason)
        except Exception:
            self.write_errors += 1
            self.last_write_error_at = time.monotonic()
            log.exception("could not write interaction %s to the trail", interaction.id)

    @property
    def shared(self) -> bool:
        """The DB is PostgreSQL, which other replicas may write too."""
        return is_url(self._path)

    @property
    def queued(self) -> int:
        """Interactions recorded and not yet committed."""
        return self._unwritten

    def writes_failing(self, within_s: float = 300.0) -> bool:
        """Whether a row was lost recently (readiness degrades while writes fail, not forever)."""
        return self.last_write_error_at is not None and time.monotonic() - self.last_write_error_at < within_s

    async def close(self) -> None:
        await self.flush()
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        if self._repo is not None:
            repo = self._repo
            await asyncio.get_running_loop().run_in_executor(self._executor, repo.conn.close)
            self._repo = None
        self._executor.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        for reader in self._reader_repos:
            reader.conn.close()
        self._reader_repos.clear()
