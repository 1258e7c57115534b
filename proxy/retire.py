"""Retire lessons that do not help, for policies with `retire.enabled` (a periodic job)."""

from __future__ import annotations

import logging

from policies import PolicySet
from proxy.effect import retire_reason
from proxy.report import retire_config
from proxy.storage.repo import TrailRepo
from proxy.storage.report_queries import judged_lessons

log = logging.getLogger("loopwise.retire")


def retire_unhelpful(repo: TrailRepo, policies: PolicySet) -> list[tuple[str, str]]:
    """Retire each active lesson its policy's thresholds condemn; returns (id, reason) pairs."""
    thresholds = [p.policy.retire.min_injections for p in policies.policies if p.policy.retire.enabled]
    if not thresholds:
        return []
    retired = []
    for lesson in judged_lessons(repo, min(thresholds)):
        config, automatic = retire_config(policies, lesson)
        reason = retire_reason(lesson, config) if automatic else None
        if reason:
            repo.set_lesson_status(lesson.id, "retired", f"auto-retired: {reason}", by_person=False)
            log.info("retired lesson %s: %s", lesson.id, reason)
            retired.append((lesson.id, reason))
    return retired
