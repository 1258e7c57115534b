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
from proxy.chat.lexical import overlap
from proxy.chat.request import Identity
from proxy.embeddings import Embedder
from proxy.embeddings.model import MAX_EMBED_CHARS, Busy
from proxy.learning.gate import Gate
from proxy.learning.index import LessonIndex
from proxy.vectors import Hit

log = logging.getLogger("loopwise.recall")
RIVALS = 12  # extra hits fetched: a lesson's other triggers, and the best lesson teaching else


@dataclass(frozen=True)
class RecallResult:
    lessons: tuple[RecalledLesson, ...]
    status: str  # ok | timeout | error | skipped | disabled | shed
    ms: float | None = None
    error: str | None = None
    stage: str | None = None  # what decided: scope | gate | model | explore (None: did not run)
    embedded: str | None = None  # the text the model embedded, when it ran
    best: float | None = None  # the best-ranked correction's score, when the search found one
    ambiguous: bool = False  # two corrections too close to tell apart, the best at or above min_score


def scope_filter(identity: Identity, config: RecallConfig) -> dict[str, str]:
    must = {"status": "active", "app": identity.app, "tenant": identity.tenant or ""}
    if config.scope == "user":
        must["user_id"] = identity.user_id or ""
    return must


def _teaches(hit: Hit) -> str:
    """Lessons that teach the same correction agree; one without a correction stands alone."""
    correction = " ".join(str(hit.payload.get("correction") or "").lower().split())
    return correction or lesson_of(hit)


def lesson_of(hit: Hit) -> str:
    """The lesson a hit is a point of: its own question's, or one of its triggers'."""
    return str(hit.payload.get("lesson_id") or hit.id)


LEXICAL = 0.1  # how much the shared distinctive words move a correction's rank (not its score)


@dataclass(frozen=True)
class Taught:
    """The hits that teach one correction: how strongly the turn matches it (`score`, the
    similarity the threshold is calibrated on) and where it ranks (`rank`: the score moved by
    the words the turn shares with its questions, `proxy.chat.lexical`)."""

    score: float
    rank: float
    hits: tuple[Hit, ...]


def agreement(hits: Sequence[Hit], text: str = "") -> list[Taught]:
    """The hits grouped by what they teach (lessons that drew the same correction, and a
    lesson's trigger questions, are one group), best ranked first. A group scores its best hit:
    the mean of its two best was measured too and cost recall for no precision (CLINC150, k=5:
    precision 0.907 against 0.901, recall 0.394 against 0.420; 30 close banking intents: 0.900
    against 0.901, recall 0.452 against 0.496; docs/retrieval.md). A correction whose nearest
    question is one it was wrong for (a trigger `against`) is left out."""
    ordered = sorted(hits, key=lambda h: -h.score)
    asked = [str(h.payload.get("trigger") or h.payload.get("question") or "") for h in ordered]
    lexical = overlap(text, asked) if text else []
    shares = dict(zip((h.id for h in ordered), lexical, strict=False))
    groups: dict[str, list[Hit]] = {}
    against: dict[str, float] = {}  # the best score of a question each correction was wrong for
    for hit in ordered:
        if hit.payload.get("against"):
            against.setdefault(_teaches(hit), hit.score)
        else:
            groups.setdefault(_teaches(hit), []).append(hit)
    taught = []
    for key, group in groups.items():
        if against.get(key, -2.0) >= group[0].score:  # nearer a known mistake than any question
            continue
        score = group[0].score
        words = max(shares.get(h.id, 0.0) for h in group)
        taught.append(Taught(score, score + LEXICAL * words, tuple(group)))
    return sorted(taught, key=lambda t: -t.rank)


@dataclass(frozen=True)
class Decision:
    hits: list[Hit]  # what to inject
    best: float | None = None  # the best-ranked correction's score
    ambiguous: bool = False  # the margin rule refused a match at or above min_score


def decide(hits: Sequence[Hit], config: RecallConfig, text: str = "") -> Decision:
    """The hits worth injecting: the best lesson of each correction the turn matches at or above
    min_score. With a margin (min_margin > 0): none at all when the best-ranked correction does
    not beat the next by min_margin (an ambiguous match), else that correction alone, one
    lesson of it: before, a turn got 2.28 lessons on CLINC150 at k=5 (bench/retrieval.py),
    mostly copies of one correction and sometimes a second one well below the first.

    Measured on CLINC150 (bench/retrieval.py): the margin raises precision at a small cost in
    recall, and halves how often an unrelated (out-of-scope) question gets a lesson; the words
    (`text`, the turn) tell apart lessons that differ in a name (docs/retrieval.md)."""
    taught = agreement(hits, text)
    if not taught:
        return Decision([])
    best = taught[0].score
    if config.min_margin > 0:
        if len(taught) > 1 and taught[0].rank - taught[1].rank < config.min_margin:
            return Decision([], best, best >= config.min_score)
        taught = taught[:1]
    return Decision([t.hits[0] for t in taught if t.score >= config.min_score][: config.top_k], best)


def decisive(hits: Sequence[Hit], config: RecallConfig, text: str = "") -> list[Hit]:
    """`decide`'s hits alone (the benchmarks compare decision rules with it)."""
    return decide(hits, config, text).hits


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
        decision = decide(found, config, query)
    except Busy as exc:
        return RecallResult((), "shed", took(), f"recall shed under load: {exc}", "model")
    except TimeoutError:
        budget = f"recall exceeded its {config.timeout_ms} ms budget"
        return RecallResult((), "timeout", took(), budget, "model")
    except Exception as exc:  # noqa: BLE001 - recall must never block a request
        log.warning("recall failed, request goes on without lessons: %s", exc)
        return RecallResult((), "error", took(), f"{type(exc).__name__}: {exc}", "model")
    lessons = tuple(_lesson(lesson_of(h), h.score, dict(h.payload)) for h in decision.hits)
    return RecallResult(
        lessons, "ok", took(), stage=stage, embedded=query, best=decision.best, ambiguous=decision.ambiguous
    )
