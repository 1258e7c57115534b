"""Users' profiles as the request path reads them: each user's preferences (`storage/preferences`)
cached in memory for a few seconds, so a conversation's turns read the DB once.

The cache is per process. Feedback recorded here, and an erasure here, drop the user's entry at
once; with replicas, another replica's cached copy lives on for at most `TTL_S` (a user's own
preference reaching their own next turns a few seconds late, or an erased one a few seconds
long). A read that fails or outlasts its budget leaves the turn without preferences (logged):
a profile never blocks a request."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping

from proxy.storage import TrailDB
from proxy.storage import preferences as stored
from proxy.storage.preferences import EVERY_APP

log = logging.getLogger("loopwise.profiles")
TTL_S = 5.0
CACHED_USERS = 50_000

Owner = tuple[str, str]  # (tenant, or '' for none; user id)


Row = tuple[str, str, str]  # (app, dimension, value)


def applying(rows: list[Row], app: str) -> dict[str, str]:
    """dimension -> value for `app`: the app's own preference over the one for every app."""
    chosen: dict[str, Row] = {}
    for row in rows:
        scope, dimension, _ = row
        if scope not in (app, EVERY_APP):
            continue
        held = chosen.get(dimension)
        if held is None or (held[0] == EVERY_APP and scope == app):
            chosen[dimension] = row
    return {dimension: value for _, dimension, value in chosen.values()}


class Profiles:
    def __init__(self, db: TrailDB, ttl_s: float = TTL_S, size: int = CACHED_USERS) -> None:
        self._db = db
        self._ttl = ttl_s
        self._size = size
        self._cache: OrderedDict[Owner, tuple[float, list[Row]]] = OrderedDict()

    async def of(
        self, tenant: str | None, app: str, user_id: str | None, budget_s: float
    ) -> Mapping[str, str]:
        """The preferences that apply to `user_id` in `app` ({} without a user, or on failure)."""
        if not user_id:
            return {}
        owner = (tenant or "", user_id)
        held = self._cache.get(owner)
        now = time.monotonic()
        if held is None or now - held[0] > self._ttl:
            try:
                async with asyncio.timeout(budget_s):
                    rows = await self._db.read_now(lambda repo: stored.values_of(repo.conn, *owner))
            except Exception as exc:  # noqa: BLE001 - a profile never blocks a request
                log.warning("preferences not read for this turn: %s: %s", type(exc).__name__, exc)
                return {}
            held = (now, rows)
            self._cache[owner] = held
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(owner)
        return applying(held[1], app)

    def forget(self, tenant: str | None, user_id: str | None) -> None:
        """Drop a user's cached profile (their feedback changed it, or they were erased)."""
        self._cache.pop((tenant or "", user_id or ""), None)

    def forget_user(self, user_id: str) -> None:
        """Drop `user_id`'s cached profile in every tenant (an erasure)."""
        for owner in [o for o in self._cache if o[1] == user_id]:
            del self._cache[owner]
