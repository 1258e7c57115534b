"""Recall: embed the latest user turn once, search once, inside a time budget; fail open."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import injectors
from policies import RecallConfig
from proxy.embeddings import Embedder
from proxy.identity import Identity
from proxy.lesson_index import LessonIndex

log = logging.getLogger("loopwise.recall")


@dataclass(frozen=True)
class RecallResult:
    lessons: tuple[injectors.Lesson, ...]
    status: str  # ok | timeout | error | skipped | disabled
    ms: float | None = None
    error: str | None = None


def scope_filter(identity: Identity, config: RecallConfig) -> dict[str, str]:
    must = {"status": "active", "app": identity.app}
    if config.scope == "user":
        must["user_id"] = identity.user_id or ""
    return must


def _lesson(hit_id: str, score: float, payload: dict[str, object]) -> injectors.Lesson:
    categories = payload.get("categories")
    return injectors.Lesson(
        id=hit_id,
        score=score,
        question=str(payload.get("question", "")),
        bad_answer=str(payload.get("bad_answer", "")),
        categories=tuple(str(c) for c in categories) if isinstance(categories, list) else (),
        comment=str(payload.get("comment", "")),
        correction=str(payload.get("correction", "")),
    )


async def recall(
    embedder: Embedder, index: LessonIndex, text: str, identity: Identity, config: RecallConfig
) -> RecallResult:
    if not config.enabled:
        return RecallResult((), "disabled")
    if not text.strip():
        return RecallResult((), "skipped", error="no user text to match")
    started = time.perf_counter()
    try:
        async with asyncio.timeout(config.timeout_ms / 1000):
            vector = await embedder.embed(text)
            hits = await index.search(vector, scope_filter(identity, config), config.top_k, config.min_score)
    except TimeoutError:
        ms = (time.perf_counter() - started) * 1000
        return RecallResult((), "timeout", ms, f"recall exceeded its {config.timeout_ms} ms budget")
    except Exception as exc:  # noqa: BLE001 - recall must never block a request
        log.warning("recall failed, request goes on without lessons: %s", exc)
        ms = (time.perf_counter() - started) * 1000
        return RecallResult((), "error", ms, f"{type(exc).__name__}: {exc}")
    ms = (time.perf_counter() - started) * 1000
    lessons = tuple(_lesson(h.id, h.score, dict(h.payload)) for h in hits)
    return RecallResult(lessons, "ok", ms)
