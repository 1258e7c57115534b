"""The proxy's periodic work, as a list of small named jobs (mitmproxy's `default_addons()` is
the model): each says what it does and how often, and `run_jobs` runs them until shutdown.

All three are per-process: each replica reloads its own policies and follows the trail DB with
its own index; auto-retiring twice is harmless (the second finds nothing to retire).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from policies import PolicyStore
from proxy.learning.index import LessonIndex
from proxy.learning.report import retire_unhelpful
from proxy.storage import TrailDB

log = logging.getLogger("loopwise.jobs")


class Job(Protocol):
    name: str
    every_s: float

    async def run(self) -> None: ...


@dataclass
class PolicyReload:
    """Picks up edited policy files; a broken edit keeps the last good set (see /readyz)."""

    policies: PolicyStore
    name: str = "policy-reload"
    every_s: float = 1.0

    async def run(self) -> None:
        self.policies.reload_if_changed()


@dataclass
class IndexSync:
    """Pushes lessons whose index entry is behind the trail DB (reviews from the CLI, crashes)."""

    index: LessonIndex
    db: TrailDB
    name: str = "index-sync"
    every_s: float = 1.0

    async def run(self) -> None:
        await self.index.sync_quietly(self.db)


@dataclass
class AutoRetire:
    """Retires lessons that do not help, for policies with `retire.enabled`."""

    db: TrailDB
    policies: PolicyStore
    name: str = "auto-retire"
    every_s: float = 30.0

    async def run(self) -> None:
        current = self.policies.current
        await self.db.run(lambda repo: retire_unhelpful(repo, current))


def default_jobs(policies: PolicyStore, db: TrailDB, index: LessonIndex) -> list[Job]:
    return [PolicyReload(policies), IndexSync(index, db), AutoRetire(db, policies)]


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
