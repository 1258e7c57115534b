"""Explain a request without calling the provider: policy, recalled lessons, final messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from proxy.chat_body import validate_chat
from proxy.identity import identify
from proxy.pipeline import plan
from proxy.services import Services


def explain_body(question: str, model: str, system: str | None = None) -> dict[str, Any]:
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": question}
    ]
    return {"model": model, "messages": messages}


async def explain(svc: Services, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    validate_chat(body)
    identity = identify(headers, body)
    planned = await plan(svc.policies.current, svc.embedder, svc.index, body, identity)
    injected = {i.lesson_id: i for i in planned.injected}
    return {
        "object": "explanation",
        "app": identity.app,
        "user_role": identity.user_role,
        "policy": planned.policy.name if planned.policy else None,
        "policy_source": planned.policy.source if planned.policy else None,
        "policy_version": planned.policy_version,
        "arm": planned.arm,
        "recall": {"status": planned.recall.status, "ms": planned.recall.ms, "error": planned.recall.error},
        "lessons": [
            {**asdict(lesson), "injected_by": injected[lesson.id].injector if lesson.id in injected else None}
            for lesson in planned.recall.lessons
        ],
        "injector_errors": list(planned.injector_errors),
        "messages": planned.messages,
    }
