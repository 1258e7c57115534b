"""The request path before the provider: select a policy, recall, inject. Shared by chat and
explain, so `loopwise explain` shows exactly what a request would send."""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import injectors
from injectors.text import last_user_text
from policies import MatchContext, PolicySet
from policies.matcher import CompiledPolicy
from proxy.embeddings import Embedder
from proxy.errors import ApiError
from proxy.identity import Identity
from proxy.lesson_index import LessonIndex
from proxy.recall import RecallResult, recall
from proxy.records import InjectedLesson

log = logging.getLogger("loopwise.pipeline")


@dataclass(frozen=True)
class Plan:
    policy: CompiledPolicy | None
    policy_version: str
    arm: str
    question: str
    recall: RecallResult
    messages: list[dict[str, Any]]
    injected: tuple[InjectedLesson, ...]
    injector_errors: tuple[str, ...] = ()
    shadow: tuple[InjectedLesson, ...] = ()  # control arm: recalled, not sent


def assign_arm(holdout: float, session_id: str | None) -> str:
    """Control or treatment; sticky per session so a conversation is treated consistently."""
    if holdout <= 0:
        return "treatment"
    if session_id:
        bucket = int.from_bytes(hashlib.sha256(session_id.encode()).digest()[:8], "big") / 2**64
    else:
        bucket = random.random()
    return "control" if bucket < holdout else "treatment"


def run_injectors(
    policy: CompiledPolicy,
    messages: Sequence[dict[str, Any]],
    lessons: Sequence[injectors.Lesson],
) -> tuple[list[dict[str, Any]], tuple[InjectedLesson, ...], tuple[str, ...]]:
    """Each injector in policy order, sharing the policy's token budget; failures contained."""
    scores = {lesson.id: lesson.score for lesson in lessons}
    current = list(messages)
    injected: list[InjectedLesson] = []
    errors: list[str] = []
    budget = policy.policy.budget_tokens
    for injector in policy.injectors:
        try:
            result = injector.inject(current, lessons, budget)
        except Exception as exc:
            if policy.policy.strict:
                raise ApiError(
                    500, f"injector {injector.name!r} failed under strict policy {policy.name!r}: {exc}"
                ) from exc
            log.exception("injector %s failed; skipped", injector.name)
            errors.append(f"{injector.name}: {type(exc).__name__}: {exc}")
            continue
        current = result.messages
        budget = max(0, budget - result.tokens)
        injected += [
            InjectedLesson(i, round(scores.get(i, 0.0), 4), injector.name) for i in result.lesson_ids
        ]
    return current, tuple(injected), tuple(errors)


async def plan(
    policies: PolicySet,
    embedder: Embedder,
    index: LessonIndex,
    body: dict[str, Any],
    identity: Identity,
) -> Plan:
    messages: list[dict[str, Any]] = body["messages"]
    question = last_user_text(messages)
    policy = policies.select(
        MatchContext(identity.app, str(body.get("model", "")), identity.user_role, identity.metadata)
    )
    if policy is None:
        return Plan(
            None,
            policies.version,
            "treatment",
            question,
            RecallResult((), "skipped", error="no policy matched"),
            messages,
            (),
        )
    arm = assign_arm(policy.policy.holdout, identity.session_id)
    found = await recall(embedder, index, question, identity, policy.policy.recall)
    sent, injected, errors = run_injectors(policy, messages, found.lessons)
    if arm == "control":  # the same recall, so each lesson can be compared with its control
        return Plan(policy, policies.version, arm, question, found, messages, (), errors, injected)
    return Plan(policy, policies.version, arm, question, found, sent, injected, errors)
