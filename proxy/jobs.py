"""The proxy's periodic work, as a list of small named jobs (mitmproxy's `default_addons()` is
the model): each says what it does and how often, and `run_jobs` runs them until shutdown.

All three are per-process: each replica reloads its own policies and follows the trail DB with
its own index; auto-retiring twice is harmless (the second finds nothing to retire).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from policies import PolicyStore
from proxy.access.keys import KeyRing
from proxy.learning.index import LessonIndex
from proxy.learning.report import retire_unhelpful
from proxy.storage import TrailDB
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


def default_jobs(policies: PolicyStore, db: TrailDB, index: LessonIndex, keys: KeyRing) -> list[Job]:
    async def reload_policies() -> None:
        """Edited policy files go live; a broken edit keeps the last good set (see /readyz)."""
        policies.reload_if_changed()

    async def follow_db() -> None:
        """Lessons whose index entry is behind the trail DB (CLI reviews, crashes) are pushed."""
        await index.sync_quietly(db)

    async def retire() -> None:
        """Lessons that do not help are retired, under policies with `retire.enabled`."""
        current = policies.current
        await db.run(lambda repo: retire_unhelpful(repo, current))

    async def reload_keys() -> None:
        """Keys created or revoked elsewhere (CLI, admin API on another replica) apply here."""
        await follow_keys(db, keys)

    return [
        Job("key-refresh", 1.0, reload_keys),
        Job("policy-reload", 1.0, reload_policies),
        Job("index-sync", 1.0, follow_db),
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
