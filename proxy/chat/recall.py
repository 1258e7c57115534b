"""Recall: embed the latest user turn once, search once, inside a time budget; fail open."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from injectors import RecalledLesson
from policies import RecallConfig
from proxy.chat.request import Identity
from proxy.embeddings import Embedder
from proxy.learning.index import LessonIndex
from proxy.vectors import Hit

log = logging.getLogger("loopwise.recall")
RIVALS = 4  # extra hits fetched to find the best lesson that teaches something else


@dataclass(frozen=True)
class RecallResult:
    lessons: tuple[RecalledLesson, ...]
    status: str  # ok | timeout | error | skipped | disabled
    ms: float | None = None
    error: str | None = None


def scope_filter(identity: Identity, config: RecallConfig) -> dict[str, str]:
    must = {"status": "active", "app": identity.app, "tenant": identity.tenant or ""}
    if config.scope == "user":
        must["user_id"] = identity.user_id or ""
    return must


def _teaches(hit: Hit) -> str:
    """Lessons that teach the same correction agree; one without a correction stands alone."""
    correction = " ".join(str(hit.payload.get("correction") or "").lower().split())
    return correction or hit.id


def decisive(hits: Sequence[Hit], config: RecallConfig) -> list[Hit]:
    """The hits worth injecting: at or above min_score, and none at all when the best lesson does
    not beat the best lesson teaching something else by min_margin (an ambiguous match).

    Measured on CLINC150 (bench/retrieval.py): the margin raises precision at a small cost in
    recall, and halves how often an unrelated (out-of-scope) question gets a lesson."""
    if not hits:
        return []
    best = _teaches(hits[0])
    rival = next((h.score for h in hits[1:] if _teaches(h) != best), None)
    if rival is not None and hits[0].score - rival < config.min_margin:
        return []
    return [h for h in hits if h.score >= config.min_score][: config.top_k]


def _lesson(hit_id: str, score: float, payload: dict[str, object]) -> RecalledLesson:
    categories = payload.get("categories")
    return RecalledLesson(
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
            # look a little below the threshold and past top_k, to see the best rival
            floor = max(-1.0, config.min_score - config.min_margin)
            found = await index.search(vector, scope_filter(identity, config), config.top_k + RIVALS, floor)
            hits = decisive(found, config)
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
