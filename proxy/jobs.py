"""The proxy's periodic work, as a list of small named jobs (mitmproxy's `default_addons()` is
the model): each says what it does and how often, and `run_jobs` runs them until shutdown.

Most are per process: each replica reloads its own keys and policies and follows the trail DB
with its own index. Those marked `fleet` (auto-retire, retention, forgetting quiet sessions)
run once per period across every replica sharing the DB: each run is claimed in the DB first
(`storage/fleet`), and the replica that wins it does the work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from policies import PolicyStore
from proxy.access.console import ConsoleSessions
from proxy.access.keys import KeyRing
from proxy.chat.asking import PROVEN_AT, Evidence
from proxy.learning.index import LessonIndex
from proxy.learning.report import retire_unhelpful
from proxy.storage import TrailDB, fleet, heads, signouts
from proxy.storage.erasure import purge_before
from proxy.storage.keys import active_keys, keys_stamp
from proxy.storage.report_queries import judged_counts

log = logging.getLogger("loopwise.jobs")


@dataclass(frozen=True)
class Job:
    name: str
    every_s: float
    run: Callable[[], Awaitable[object]]
    fleet: bool = False  # once per period across the replicas, not once per replica


async def follow_keys(db: TrailDB, ring: KeyRing, console: ConsoleSessions | None = None) -> None:
    """Reload the key ring when a key was created or revoked (by the CLI, or another replica),
    and the console sessions signed out anywhere."""
    stamp = await db.run(keys_stamp)
    if stamp != ring.stamp:
        ring.replace(await db.run(active_keys), stamp)
    if console is not None:
        console.forbid(await db.run(partial(signouts.current, now=time.time())))


async def purge_expired(db: TrailDB, index: LessonIndex, retention_days: float) -> dict[str, Any]:
    """Erase what is older than the retention period, lessons' index entries included."""
    cutoff = time.time() - retention_days * 86400
    erased = await db.run(lambda repo: purge_before(repo, cutoff))
    await index.remove(erased.pop("lesson_ids"), erased.pop("trigger_points"))
    if any(erased.values()):
        log.info("retention: purged %s", erased)
    return erased


def default_jobs(
    policies: PolicyStore,
    db: TrailDB,
    index: LessonIndex,
    keys: KeyRing,
    retention_days: float | None = None,
    session_window_s: float = 0.0,
    console: ConsoleSessions | None = None,
    evidence: Evidence | None = None,
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
        await follow_keys(db, keys, console)

    async def retention() -> None:
        """Interactions, feedback and lessons older than `privacy.retention_days` are erased."""
        if retention_days is not None:
            await purge_expired(db, index, retention_days)

    async def forget_sessions() -> None:
        """Sessions quiet for longer than any signal reaches back are forgotten (`session_heads`),
        and console sign-outs of sessions that have expired anyway."""
        now = time.time()
        await db.run(partial(heads.purge, before=now - session_window_s))
        await db.run(partial(signouts.purge, now=now))

    async def read_evidence() -> None:
        """How often each active lesson was judged, for the `new-lesson` reason to ask for
        feedback (`chat/asking`), when a policy gives it."""
        asking = (p.spec.feedback_wanted for p in policies.current.policies)
        if evidence is not None and any(a is not None and "new-lesson" in a.reasons for a in asking):
            evidence.judged = await db.read_now(partial(judged_counts, up_to=PROVEN_AT))

    return [
        Job("key-refresh", 1.0, reload_keys),
        Job("lesson-evidence", 10.0, read_evidence),
        Job("retention", 300.0, retention, fleet=True),
        Job("policy-reload", 1.0, reload_policies),
        Job("index-sync", 0.5, follow_db),  # a lesson learned on another replica recalls here within ~1 s
        Job("index-graph", 30.0, build_graph),
        Job("auto-retire", 30.0, retire, fleet=True),
        Job("session-heads", 300.0, forget_sessions, fleet=True),
    ]


async def _every(job: Job, db: TrailDB) -> None:
    while True:
        await asyncio.sleep(job.every_s)
        try:
            if job.fleet and not await db.run(partial(fleet.claim, name=job.name, every_s=job.every_s)):
                continue  # another replica has this period's run
            await job.run()
        except Exception:
            log.exception("job %s failed; it runs again in %g s", job.name, job.every_s)


def run_jobs(jobs: Sequence[Job], db: TrailDB) -> list[asyncio.Task[None]]:
    """Start each job's loop; cancel the tasks to stop them."""
    return [asyncio.create_task(_every(job, db), name=f"loopwise-{job.name}") for job in jobs]
