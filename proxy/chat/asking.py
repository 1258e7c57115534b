"""Feedback wanted: when an answer tells the app that feedback on it would teach the most
(`X-Loopwise-Feedback-Wanted: <reason>`), so the app asks its user rarely and well.

The reasons, each tried in the policy's order (`feedback_wanted.reasons`):
- `ambiguous-match`: recall found a correction near the line: two corrections too close to
  tell apart, or the best one just below `min_score` (within `band`). A verdict here says
  whether the lesson should have been used.
- `new-lesson`: a lesson injected into this turn has been judged (feedback after its
  injection) fewer than `unproven_below` times: a verdict decides whether it helps.
- `contradicts-correction`: the answer leaves out what the injected correction says (its
  numbers and distinctive words): the lesson may be wrong for this question, or ignored.
- `low-confidence`: the client asked for logprobs and the answer's mean token logprob is
  below `min_logprob`.
- `sampled`: a random share (`sample_rate`) of the other turns, as a baseline.
A streamed answer's headers leave before its text exists, so it can carry only the reasons
known before the answer (`ambiguous-match`, `new-lesson`, `sampled`).

The budget (`per_session`, `per_user_per_day`) is counted in this process: with replicas, a
user may be asked up to once per replica over the budget. A turn with neither a session nor a
user is never asked (there is nothing to count its asks against)."""

from __future__ import annotations

import random
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from typing import Any

from policies import FeedbackWantedConfig
from proxy.chat.pipeline import Plan
from proxy.chat.request import Identity

DAY_S = 86400.0
TRACKED = 100_000  # sessions and users whose requests are counted (the least recent forgotten)
AFTER_ANSWER = frozenset({"contradicts-correction", "low-confidence"})
PROVEN_AT = 100  # judged counts are read up to this (`unproven_below` is at most this)

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]{4,}", re.UNICODE)
_COMMON = frozenset(
    (
        "that", "this", "with", "from", "have", "will", "your", "they", "them", "their", "there", "what",
        "when", "where", "which", "would", "could", "should", "about", "into", "only", "also", "than",
        "then", "been", "were", "does", "more", "most", "some", "such", "very", "just", "like", "make",
        "made", "each", "other", "over", "after", "before", "because", "while", "these", "those", "being",
    )
)  # fmt: skip


class AskBudget:
    """How often each session and each user was asked for feedback, in this process."""

    def __init__(self, tracked: int = TRACKED) -> None:
        self._sessions: OrderedDict[str, int] = OrderedDict()
        self._users: OrderedDict[str, deque[float]] = OrderedDict()
        self._tracked = tracked

    def allows(self, session: str | None, user: str | None, config: FeedbackWantedConfig, now: float) -> bool:
        if session and self._sessions.get(session, 0) >= config.per_session:
            return False
        if user:
            asked = self._users.get(user)
            while asked and now - asked[0] > DAY_S:
                asked.popleft()
            if asked is not None and len(asked) >= config.per_user_per_day:
                return False
        return config.per_session > 0 and config.per_user_per_day > 0

    def spend(self, session: str | None, user: str | None, now: float) -> None:
        if session:
            self._sessions[session] = self._sessions.get(session, 0) + 1
            self._sessions.move_to_end(session)
            if len(self._sessions) > self._tracked:
                self._sessions.popitem(last=False)
        if user:
            self._users.setdefault(user, deque()).append(now)
            self._users.move_to_end(user)
            if len(self._users) > self._tracked:
                self._users.popitem(last=False)


class Evidence:
    """How many times each active lesson has been judged, read from the DB every few seconds
    (the `lesson-evidence` job); a lesson not read yet is new, so unjudged."""

    def __init__(self) -> None:
        self.judged: Mapping[str, int] = {}

    def unproven(self, lesson_id: str, below: int) -> bool:
        return self.judged.get(lesson_id, 0) < below


def _keys(text: str) -> set[str]:
    return {t for t in _TOKEN.findall(text.casefold()) if t not in _COMMON}


def contradicts(correction: str, question: str, answer: str) -> bool:
    """The answer leaves out what the correction says: fewer than half of its numbers and
    distinctive words (those the question does not already hold), or any of its numbers."""
    keys = _keys(correction) - _keys(question)
    if not keys or not answer.strip():
        return False
    said = _keys(answer)
    numbers = {k for k in keys if k[0].isdigit()}
    return bool(numbers - said) or len(keys & said) * 2 < len(keys)


def mean_logprob(response: Mapping[str, Any] | None) -> float | None:
    """The mean token logprob of the first choice, when the provider sent logprobs."""
    choices = response.get("choices") if isinstance(response, Mapping) else None
    first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    logprobs = first.get("logprobs") if isinstance(first, dict) else None
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    values = [
        t["logprob"]
        for t in content or ()
        if isinstance(t, dict) and isinstance(t.get("logprob"), int | float)
    ]
    return sum(values) / len(values) if values else None


def _applies(
    reason: str,
    plan: Plan,
    config: FeedbackWantedConfig,
    evidence: Evidence,
    answer: tuple[str, Mapping[str, Any] | None] | None,
    draw: Callable[[], float],
) -> bool:
    recall = plan.recall
    if reason == "ambiguous-match":
        floor = plan.policy.spec.recall.min_score - config.band if plan.policy else 1.0
        held = plan.injected or plan.shadow  # a control turn's match is as clear as a treated one's
        return recall.ambiguous or (not held and recall.best is not None and recall.best >= floor)
    if reason == "new-lesson":  # in the control arm, the lesson it would have had: its control verdict
        return any(
            evidence.unproven(i.lesson_id, config.unproven_below) for i in plan.injected or plan.shadow
        )
    if reason == "sampled":
        return config.sample_rate > 0 and draw() < config.sample_rate
    if answer is None:
        return False
    text, response = answer
    if reason == "contradicts-correction":
        injected = {i.lesson_id for i in plan.injected}
        taught = [lesson for lesson in recall.lessons if lesson.id in injected and lesson.correction]
        return any(contradicts(lesson.correction, plan.question, text) for lesson in taught)
    confidence = mean_logprob(response)
    return confidence is not None and confidence < config.min_logprob


def wanted(
    plan: Plan,
    config: FeedbackWantedConfig | None,
    evidence: Evidence,
    answer: tuple[str, Mapping[str, Any] | None] | None = None,
    draw: Callable[[], float] = random.random,
) -> str | None:
    """The first of the policy's reasons that applies to this turn (`answer`: its text and
    response, None before it exists), or None. The budget is the caller's (`AskBudget`)."""
    if config is None or plan.policy is None:
        return None
    for reason in config.reasons:
        if answer is None and reason in AFTER_ANSWER:
            continue
        if _applies(reason, plan, config, evidence, answer, draw):
            return reason
    return None


def ask(
    plan: Plan,
    identity: Identity,
    budget: AskBudget,
    evidence: Evidence,
    answer: tuple[str, Mapping[str, Any] | None] | None = None,
) -> str | None:
    """The reason this turn's answer asks for feedback, within the budget (which it spends)."""
    config = plan.policy.spec.feedback_wanted if plan.policy else None
    if config is None:
        return None
    reason = wanted(plan, config, evidence, answer)
    if reason is None:
        return None
    tenant, app = identity.tenant or "", identity.app
    session = f"{tenant}\x00{app}\x00{identity.session_id}" if identity.session_id else None
    user = f"{tenant}\x00{identity.user_id}" if identity.user_id else None
    now = time.time()
    if session is None and user is None:  # nothing to count asks against: never asked
        return None
    if not budget.allows(session, user, config, now):
        return None
    budget.spend(session, user, now)
    return reason
