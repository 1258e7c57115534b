"""Recall: a cascade over the latest user turn, inside a time budget; fail open.

1. scope: no active lesson in the app (and tenant): nothing to find, nothing run;
2. gate: the turn's static vectors (the whole turn, or each sentence of a long one), mapped into
   the model's space, against the scope's lessons; below the threshold (calibrated as it runs, or
   the policy's `gate_score`) the model is not run, except for a random few while the model is
   idle (`explore`), which keep the calibration honest;
3. model: the model embeds the window the gate found nearest a lesson (a short turn whole),
   unless its queue would keep it past the budget (then `shed`, at once); the filtered index
   search; the decision (score, margin).
The trail records which stage decided (`stage`). Without the gate (a model with no static
table, or while it is being built) the model embeds the whole turn, as before the cascade."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from injectors import RecalledLesson
from policies import RecallConfig
from proxy.chat.request import Identity
from proxy.embeddings import Embedder
from proxy.embeddings.model import MAX_EMBED_CHARS, Busy
from proxy.learning.gate import Gate
from proxy.learning.index import LessonIndex
from proxy.vectors import Hit

log = logging.getLogger("loopwise.recall")
RIVALS = 4  # extra hits fetched to find the best lesson that teaches something else


@dataclass(frozen=True)
class RecallResult:
    lessons: tuple[RecalledLesson, ...]
    status: str  # ok | timeout | error | skipped | disabled | shed
    ms: float | None = None
    error: str | None = None
    stage: str | None = None  # what decided: scope | gate | model | explore (None: did not run)
    embedded: str | None = None  # the text the model embedded, when it ran


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


Learn = Callable[[list[float], list[Hit]], None]  # what a model run teaches the gate


def _through_gate(
    gate: Gate, embedder: Embedder, text: str, identity: Identity, config: RecallConfig
) -> str | tuple[str, str, Learn | None]:
    """The cascade's first stages: "scope" or "gate" when one of them ends recall; else the
    window for the model, the stage (model, or explore: below the threshold, run on idle
    capacity to keep the calibration honest) and what to teach the gate once the model ran."""
    scope = (identity.app, identity.tenant or "")
    if gate.lessons_in(*scope) == 0:
        return "scope"
    windows = gate.windows(text[:MAX_EMBED_CHARS])
    best = gate.best(*scope, windows)
    if best is None:
        return "gate"
    score, window = best
    calibration, fixed = gate.calibration(*scope), config.gate_score
    explored = score < (calibration.threshold if fixed is None else fixed)
    # below a fixed threshold, never explored; below a calibrated one, explore() counts the turn
    if explored and (fixed is not None or not calibration.explore() or embedder.queued):
        return "gate"
    static, version = windows.vectors[window], gate.projection.version

    def learn(vector: list[float], found: list[Hit]) -> None:
        matched = bool(found) and found[0].score >= config.min_score
        gate.learn(scope, static, vector, score, matched, explored, version)

    return windows.texts[window], "explore" if explored else "model", learn


async def recall(
    embedder: Embedder, index: LessonIndex, text: str, identity: Identity, config: RecallConfig
) -> RecallResult:
    if not config.enabled:
        return RecallResult((), "disabled")
    if not text.strip():
        return RecallResult((), "skipped", error="no user text to match")
    started = time.perf_counter()

    def took() -> float:
        return (time.perf_counter() - started) * 1000

    query, stage = text, "model"
    learn: Learn | None = None
    try:
        if index.gate is not None and index.gate.ready:  # on the event loop: under a hop's cost
            try:
                passed = _through_gate(index.gate, embedder, text, identity, config)
            except Exception:  # the gate failing costs the cheap path, not recall
                log.exception("recall's cheap stage failed; the model reads the whole turn")
                passed = (text, "model", None)
            if isinstance(passed, str):
                stage_ms = took()
                if passed == "scope":
                    return RecallResult((), "skipped", stage_ms, "no active lessons in scope", "scope")
                return RecallResult((), "ok", stage_ms, stage="gate")
            query, stage, learn = passed
        # look a little below the threshold and past top_k, to see the best rival
        floor = max(-1.0, config.min_score - config.min_margin)
        must, limit = scope_filter(identity, config), config.top_k + RIVALS

        def search(vector: list[float]) -> tuple[list[float], list[Hit]]:
            return vector, index.search_now(vector, must, limit, floor)

        async with asyncio.timeout(config.timeout_ms / 1000):
            deadline = started + config.timeout_ms / 1000
            vector, found = await embedder.embed_then(query, search, deadline=deadline)
        if learn is not None:
            learn(vector, found)
        hits = decisive(found, config)
    except Busy as exc:
        return RecallResult((), "shed", took(), f"recall shed under load: {exc}", "model")
    except TimeoutError:
        budget = f"recall exceeded its {config.timeout_ms} ms budget"
        return RecallResult((), "timeout", took(), budget, "model")
    except Exception as exc:  # noqa: BLE001 - recall must never block a request
        log.warning("recall failed, request goes on without lessons: %s", exc)
        return RecallResult((), "error", took(), f"{type(exc).__name__}: {exc}", "model")
    lessons = tuple(_lesson(h.id, h.score, dict(h.payload)) for h in hits)
    return RecallResult(lessons, "ok", took(), stage=stage, embedded=query)
