"""Periodic work that must run once across the fleet, not once per replica (auto-retire,
retention): a run is claimed in `job_runs` (m010) by one conditional UPDATE, which only one
replica's can win per period, whichever backend."""

from __future__ import annotations

import time

from proxy.storage.repo import TrailRepo


def claim(repo: TrailRepo, name: str, every_s: float, now: float | None = None) -> bool:
    """Whether this replica runs job `name` now: nobody ran it in the last `every_s` (a tenth of
    it is slack, for replicas' timers that drift)."""
    now = time.time() if now is None else now
    repo.conn.execute("INSERT OR IGNORE INTO job_runs (name, last_run_at) VALUES (?, 0)", (name,))
    won = repo.conn.execute(
        "UPDATE job_runs SET last_run_at = ? WHERE name = ? AND last_run_at <= ?",
        (now, name, now - every_s * 0.9),
    )
    return won.rowcount == 1
