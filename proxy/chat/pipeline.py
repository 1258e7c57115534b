"""The request path before the provider: select a policy, recall, inject. Shared by chat and
explain, so `loopwise explain` shows exactly what a request would send."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from injectors import Context, RecalledLesson
from injectors.text import last_user_text
from policies import MatchContext, Policy, PolicySet
from proxy.chat.recall import RecallResult, recall
from proxy.chat.request import Identity
from proxy.embeddings import Embedder
from proxy.errors import ApiError
from proxy.learning.index import LessonIndex
from proxy.learning.profiles import Profiles
from proxy.records import InjectedLesson

log = logging.getLogger("loopwise.pipeline")
NO_CONTEXT = Context()


@dataclass(frozen=True)
class Plan:
    policy: Policy | None
    policy_version: str
    arm: str
    question: str
    recall: RecallResult
    messages: list[dict[str, Any]]
    injected: tuple[InjectedLesson, ...]
    injector_errors: tuple[str, ...] = ()
    shadow: tuple[InjectedLesson, ...] = ()  # control arm: recalled, not sent
    preferences: Mapping[str, str] | None = None  # the user's profile, when the policy reads it

    @classmethod
    def unplanned(cls, question: str, version: str, why: str) -> Plan:
        """A call relayed as it came (text completions, embeddings): no policy, no recall."""
        return cls(None, version, "treatment", question, RecallResult((), "skipped", error=why), [], ())


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
    policy: Policy,
    messages: Sequence[dict[str, Any]],
    lessons: Sequence[RecalledLesson],
    context: Context = NO_CONTEXT,
) -> tuple[list[dict[str, Any]], tuple[InjectedLesson, ...], tuple[str, ...]]:
    """Each injector in policy order, sharing the policy's token budget; failures contained."""
    scores = {lesson.id: lesson.score for lesson in lessons}
    current = list(messages)
    injected: list[InjectedLesson] = []
    errors: list[str] = []
    budget = policy.spec.budget_tokens
    for injector in policy.injectors:
        try:
            result = injector.inject_in(current, lessons, budget, context)
        except Exception as exc:
            if policy.spec.strict:
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
    profiles: Profiles | None = None,
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
    arm = assign_arm(policy.spec.holdout, identity.session_id)
    recalled = recall(embedder, index, question, identity, policy.spec.recall)
    preferences: Mapping[str, str] | None = None
    if profiles is not None and identity.user_id and any(i.reads_profile for i in policy.injectors):
        budget = policy.spec.recall.timeout_ms / 1000  # read beside recall, in the same budget
        read = profiles.of(identity.tenant, identity.app, identity.user_id, budget)
        found, preferences = await asyncio.gather(recalled, read)
    else:
        found = await recalled
    context = Context(preferences or {})
    sent, injected, errors = run_injectors(policy, messages, found.lessons, context)
    if arm == "control":
        # the same recall, so each lesson can be compared with its control; what needs no lesson
        # (a static text, the user's preferences) runs in both arms, so only the lessons differ
        held, _, held_errors = run_injectors(policy, messages, (), context)
        return Plan(
            policy, policies.version, arm, question, found, held, (), held_errors, injected, preferences
        )
    return Plan(policy, policies.version, arm, question, found, sent, injected, errors, (), preferences)


def explanation(planned: Plan, identity: Identity) -> dict[str, Any]:
    """What `loopwise explain` and POST /v1/explain show: the plan, without calling the provider."""
    injected = {i.lesson_id: i for i in planned.injected}
    return {
        "object": "explanation",
        "app": identity.app,
        "user_role": identity.user_role,
        "policy": planned.policy.name if planned.policy else None,
        "policy_source": planned.policy.source if planned.policy else None,
        "policy_version": planned.policy_version,
        "arm": planned.arm,
        "recall": {
            "status": planned.recall.status,
            "stage": planned.recall.stage,
            "ms": planned.recall.ms,
            "error": planned.recall.error,
        },
        "lessons": [
            {**asdict(lesson), "injected_by": injected[lesson.id].injector if lesson.id in injected else None}
            for lesson in planned.recall.lessons
        ],
        "preferences": dict(planned.preferences or {}),
        "injector_errors": list(planned.injector_errors),
        "messages": planned.messages,
    }


def explain_body(question: str, model: str, system: str | None = None) -> dict[str, Any]:
    """The chat body `loopwise explain` asks about."""
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": question}
    ]
    return {"model": model, "messages": messages}
