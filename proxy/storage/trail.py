"""Async access to the trail: one DB thread, and a writer that batches interaction rows.

The request path only enqueues (`record`); the writer commits batches in the background. Every
`run()` first waits for the rows queued before it, so a read or a feedback always sees each
interaction already answered, and no caller has to remember to flush.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

from proxy.records import Interaction
from proxy.storage.db import connect
from proxy.storage.repo import TrailRepo

T = TypeVar("T")
log = logging.getLogger("loopwise.trail")
BATCH = 256


class TrailDB:
    def __init__(self, path: Path) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loopwise-db")
        self._path = path
        self._repo: TrailRepo | None = None
        self._queue: asyncio.Queue[Interaction | asyncio.Future[None]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._unwritten = 0  # interactions queued and not yet committed
        self.write_errors = 0

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
                try:
                    await self._on_thread(partial(TrailRepo.insert_interactions, batch=batch))
                except Exception:
                    self.write_errors += 1
                    log.exception("could not write %d interactions to the trail", len(batch))
                self._unwritten -= len(batch)
            for item in items:
                if isinstance(item, asyncio.Future) and not item.done():
                    item.set_result(None)

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
