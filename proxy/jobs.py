"""The proxy's periodic work, as a list of small named jobs (mitmproxy's `default_addons()` is
the model): each says what it does and how often, and `run_jobs` runs them until shutdown.

All are per-process: each replica reloads its own keys and policies and follows the trail DB
with its own index; auto-retiring or purging twice is harmless (the second finds nothing).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from policies import PolicyStore
from proxy.access.keys import KeyRing
from proxy.learning.index import LessonIndex
from proxy.learning.report import retire_unhelpful
from proxy.storage import TrailDB
from proxy.storage.erasure import purge_before
from proxy.storage.keys import active_keys, keys_stamp

log = logging.getLogger("loopwise.jobs")


@dataclass(frozen=True)
class Job:
    name: str
    every_s: float
    run: Callable[[], Awaitable[object]]


async def follow_keys(db: TrailDB, ring: KeyRing) -> None:
    """Reload the key ring when a key was created or revoked (by the CLI, or another replica)."""
    stamp = await db.run(keys_stamp)
    if stamp != ring.stamp:
        ring.replace(await db.run(active_keys), stamp)


async def purge_expired(db: TrailDB, index: LessonIndex, retention_days: float) -> dict[str, Any]:
    """Erase what is older than the retention period, lessons' index entries included."""
    cutoff = time.time() - retention_days * 86400
    erased = await db.run(lambda repo: purge_before(repo, cutoff))
    await index.remove(erased.pop("lesson_ids"))
    if any(erased.values()):
        log.info("retention: purged %s", erased)
    return erased


def default_jobs(
    policies: PolicyStore, db: TrailDB, index: LessonIndex, keys: KeyRing, retention_days: float | None = None
) -> list[Job]:
    async def reload_policies() -> None:
        """Edited policy files go live; a broken edit keeps the last good set (see /readyz)."""
        policies.reload_if_changed()

    async def follow_db() -> None:
        """Lessons whose index entry is behind the trail DB (CLI reviews, crashes) are pushed."""
        await index.sync_quietly(db)

    async def build_graph() -> None:
        """The embedded index's graph is rebuilt in a child process once enough lessons sit
        outside it, and swapped in (see `proxy.learning.graph`)."""
        await index.build_graph()

    async def retire() -> None:
        """Lessons that do not help are retired, under policies with `retire.enabled`."""
        current = policies.current
        await db.run(lambda repo: retire_unhelpful(repo, current))

    async def reload_keys() -> None:
        """Keys created or revoked elsewhere (CLI, admin API on another replica) apply here."""
        await follow_keys(db, keys)

    async def retention() -> None:
        """Interactions, feedback and lessons older than `privacy.retention_days` are erased."""
        if retention_days is not None:
            await purge_expired(db, index, retention_days)

    return [
        Job("key-refresh", 1.0, reload_keys),
        Job("retention", 300.0, retention),
        Job("policy-reload", 1.0, reload_policies),
        Job("index-sync", 1.0, follow_db),
        Job("index-graph", 30.0, build_graph),
        Job("auto-retire", 30.0, retire),
    ]


async def _every(job: Job) -> None:
    while True:
        await asyncio.sleep(job.every_s)
        try:
            await job.run()
        except Exception:
            log.exception("job %s failed; it runs again in %g s", job.name, job.every_s)


def run_jobs(jobs: Sequence[Job]) -> list[asyncio.Task[None]]:
    """Start each job's loop; cancel the tasks to stop them."""
    return [asyncio.create_task(_every(job), name=f"loopwise-{job.name}") for job in jobs]
