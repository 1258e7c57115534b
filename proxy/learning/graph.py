"""The embedded index's graph, built in the background while the proxy serves.

Without a graph a search compares the query with every lesson its filter selects (measured: 45 ms
at 100k lessons; 10 ms with the graph, cold). Once `after` lessons sit outside the graph, a build
starts: the index copies its files (`EdgeIndex.begin_build`), a child process builds the graph on
the copy, and the copy is swapped in with the changes made meanwhile (`finish_build`). Searches
and updates go on against the old files the whole time. A failed build leaves the old generation
serving and is reported in /readyz; the next due check tries again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from proxy.vectors import GraphBuilds, VectorIndex

log = logging.getLogger("loopwise.index")
CHILD_MIN_S = 600.0  # the child's time limit: this, plus per lesson outside the graph
CHILD_S_PER_POINT = 0.02  # measured 1.6 ms (100k) and 2.9 ms (1M, offline) per lesson
BACKOFF_S = 60.0  # after a failed build, the next due one waits this, doubling per failure
BACKOFF_MAX_S = 6 * 3600.0
T = TypeVar("T")
OnIndexThread = Callable[[Callable[[], T]], Awaitable[T]]


@dataclass
class GraphBuild:
    after: int = 0  # lessons outside the graph that start a build; 0: never in the background
    running: bool = False
    last: dict[str, Any] | None = None  # the last build that landed
    error: str | None = None  # the last build's failure, until one lands
    failures: int = 0  # in a row
    retry_at: float = 0.0  # monotonic time before which no due build starts (after failures)

    @property
    def state(self) -> str:
        return "building" if self.running else "failed" if self.error else "idle"

    async def maybe(self, vectors: VectorIndex, on_thread: OnIndexThread[Any]) -> dict[str, Any] | None:
        """Build if enough lessons sit outside the graph; returns the build's outcome, if one ran
        and landed."""
        if self.after <= 0 or self.running or not isinstance(vectors, GraphBuilds):
            return None
        if time.monotonic() < self.retry_at:  # after a failure, back off
            return None
        if await on_thread(vectors.unindexed) < self.after:
            return None
        return await self.run(vectors, on_thread)

    async def run(self, vectors: GraphBuilds, on_thread: OnIndexThread[Any]) -> dict[str, Any] | None:
        """One build, whatever the count; never raises but on cancellation (the proxy stopping:
        the child is killed and closing the index removes its copy)."""
        if self.running:
            return None
        self.running = True
        began = time.perf_counter()
        try:
            limit = CHILD_MIN_S + CHILD_S_PER_POINT * await on_thread(vectors.unindexed)
            target = await on_thread(vectors.begin_build)
            copied = time.perf_counter()
            try:
                built = await _child(str(target), limit)
            except asyncio.CancelledError:
                raise
            except BaseException:
                await on_thread(vectors.abandon_build)
                raise
            child_done = time.perf_counter()
            built = {**built, "open_s": await _timed(vectors.open_build)}
            swapping = time.perf_counter()
            replayed = await on_thread(vectors.finish_build)
            done = time.perf_counter()
            built["release_s"] = await _timed(vectors.release)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the old generation serves on
            self.error = f"{type(exc).__name__}: {exc}"
            self.failures += 1
            wait = min(BACKOFF_MAX_S, BACKOFF_S * 2 ** (self.failures - 1))
            self.retry_at = time.monotonic() + wait
            log.warning("background graph build failed (next try in %.0f s): %s", wait, self.error)
            return None
        finally:
            self.running = False
        self.error, self.failures, self.retry_at = None, 0, 0.0
        self.last = {
            **built,
            "replayed": replayed,
            "copy_s": round(copied - began, 3),
            "child_s": round(child_done - copied, 3),
            "swap_s": round(done - swapping, 3),
            "finished_at": time.time(),
        }
        log.info("graph build landed: %s", self.last)
        return self.last


async def _timed(work: Callable[[], None]) -> float:
    began = time.perf_counter()
    await asyncio.to_thread(work)
    return round(time.perf_counter() - began, 3)


async def _child(target: str, limit_s: float) -> dict[str, Any]:
    """The build's child process, killed past `limit_s` or when the proxy stops (and dying with
    the proxy: `graph_build` asks the kernel to)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy.vectors.graph_build", target, str(os.getpid()),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit_s)
    except BaseException as exc:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(BaseException):
            await asyncio.shield(proc.wait())
        if isinstance(exc, TimeoutError):
            raise RuntimeError(f"the graph build ran past {limit_s:.0f} s and was stopped") from None
        raise
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines() or ["(no output)"]
        log.debug("the graph build's output:\n%s", "\n".join(lines))
        raise RuntimeError(f"the graph build exited with {proc.returncode}: {lines[-1][:500]}")
    found: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return found
