"""The feedback path: validate, then read, decide and write in one transaction, then index.
HTTP feedback and the implicit signals the proxy sees itself share it."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, NamedTuple

from policies import LearnConfig, MatchContext, Policy, PolicySet
from proxy.errors import ApiError
from proxy.learning import curation, preferences, spans
from proxy.learning.index import LessonIndex
from proxy.learning.lessons import LIFTABLE, Vetting, learn, polarity
from proxy.learning.review import per_user
from proxy.learning.screen import screen
from proxy.privacy import NO_REDACTION, Redactor
from proxy.records import EVERYTHING, Feedback, Lesson, Preference, Visibility, feedback_id
from proxy.storage import TrailDB, TrailRepo
from proxy.storage import preferences as stored_preferences
from proxy.storage.corroboration import users_saying
from proxy.storage.export_queries import paired, regenerated_by
from proxy.storage.preferences import EVERY_APP

log = logging.getLogger("loopwise.feedback")


ANOTHER_WRITER_S = 1.0  # how long feedback waits for a turn another replica answered


def _policy(policies: PolicySet, interaction: dict[str, Any]) -> Policy | None:
    """The policy that served the interaction decides; if it is gone, match again."""
    policy = policies.by_name(interaction["policy"]) if interaction.get("policy") else None
    if policy is None:
        policy = policies.select(
            MatchContext(interaction["app"], interaction["requested_model"], interaction.get("user_role"))
        )
    return policy


def _not_found(param: str, wanted: str, hint: str = "") -> ApiError:
    return ApiError(404, f"no interaction {wanted!r}{hint}", param=param, code="interaction_not_found")


class Recorded(NamedTuple):
    """What recording a feedback did: the row as stored, its lesson, and whether it was kept (an
    implicit preference the proxy had recorded already is not stored twice)."""

    feedback: Feedback
    lesson: Lesson | None
    kept: bool = True
    grew: bool = False  # a lesson took a new trigger question (`learning/curation`)
    preferences: tuple[Preference, ...] = ()  # the answered user's preferences it changed


@dataclass(frozen=True)
class Authority:
    """What the sender of a feedback may do: see which interactions, speak for which user."""

    visibility: Visibility = EVERYTHING
    as_interaction_user: bool = False  # a browser token speaks for the user who was answered
    trusted: bool = False  # a reviewer, or a role the operator trusts: corrections need no screen
    redactor: Redactor = NO_REDACTION  # personal data out of what is stored and taught


def _vet(
    repo: TrailRepo,
    feedback: Feedback,
    interaction: dict[str, Any],
    existing: Lesson | None,
    authority: Authority,
    config: LearnConfig | None,
) -> Vetting:
    """Screen the text the lesson would carry to other users once this feedback is in: the
    question asked (the asker's words, whoever gives the feedback), and the comment and
    correction it will hold; a trusted sender vouches for its own words only. Then count the
    distinct users (by the interactions they were answered in) who gave the same correction."""
    texts = [interaction["question"]]
    for field in ("comment", "correction"):
        given = getattr(feedback, field)
        if given and authority.trusted:
            continue
        texts.append(given or (getattr(existing, field) if existing else "") or "")
    held = screen(texts)
    corroborated = False
    if held and feedback.correction and config is not None and set(held) <= LIFTABLE:
        said = authority.redactor.redact(feedback.correction)
        users = users_saying(repo, interaction["app"], interaction.get("tenant"), said)
        users.add(interaction.get("user_id") or "")
        corroborated = len(users - {""}) >= config.corroborate_users
    untrusted = bool(feedback.comment or feedback.correction) and not authority.trusted
    return Vetting(held, corroborated, untrusted)


def _store(repo: TrailRepo, feedback: Feedback, policies: PolicySet, authority: Authority) -> Recorded:
    """Read, decide and write as one transaction: concurrent feedback on one interaction queues
    on the write lock and enriches the same lesson."""
    with repo.transaction():
        interaction = repo.get_interaction(feedback.interaction_id, authority.visibility)
        if interaction is None:
            hint = "; send the `id` of a chat completion answered by this proxy"
            raise _not_found("interaction_id", feedback.interaction_id, hint)
        other = feedback.preferred_over
        if other is not None:  # an answer to compare with: of the same app and tenant
            rival = repo.get_interaction(other, authority.visibility)
            where = ("app", "tenant")
            if rival is None or any(rival[k] != interaction[k] for k in where):
                raise _not_found("preferred_over", other)
        if authority.as_interaction_user:
            feedback = replace(feedback, user_id=interaction.get("user_id"), user_role=None, source="user")
        feedback = spans.resolve(feedback, interaction.get("response_text") or "")
        policy = _policy(policies, interaction)
        learn_config, policy_name = (policy.spec.learn, policy.name) if policy else (None, None)
        existing = repo.lesson_for_interaction(feedback.interaction_id)
        vetting = _vet(repo, feedback, interaction, existing, authority, learn_config)
        redactor = authority.redactor
        feedback = replace(
            feedback,
            comment=redactor.redact(feedback.comment) if feedback.comment else None,
            correction=redactor.redact(feedback.correction) if feedback.correction else None,
            metadata=redactor.redact_json(feedback.metadata),
            dimensions=redactor.redact_json(feedback.dimensions),
            span=redactor.redact_json(feedback.span) if feedback.span else None,
        )
        interaction = {
            **interaction,
            "question": redactor.redact(interaction["question"]),
            "response_text": redactor.redact(interaction.get("response_text") or ""),
        }
        if feedback.source == "implicit" and other in paired(repo, feedback.interaction_id):
            return Recorded(feedback, None, kept=False)  # the proxy saw this pair already
        lesson = None
        bound = authority.visibility.apps is not None or authority.as_interaction_user
        taste, personal = _taste(repo, feedback, interaction, policy, bound)
        if learn_config is not None and not personal:
            lesson = learn(feedback, interaction, existing, learn_config, policy_name, vetting)
        if lesson is not None and existing is None and not vetting.held:  # taught already?
            into = curation.teaching(repo, lesson, partial(per_user, policies))
            lesson = curation.merge(repo, into, lesson) if into is not None else lesson
        negative = polarity(feedback, learn_config.score_below if learn_config else 0.5)
        stored = replace(feedback, lesson_id=lesson.id if lesson else None, negative=negative)
        if lesson is not None:
            repo.save_lesson(lesson)
        repo.insert_feedback(stored)
        grown = lesson or (existing if feedback.signal == "rephrase" else None)
        # the user's rephrasing of this question joins its lesson; so does a question it helped
        grew = grown is not None and curation.rephrased(repo, grown, feedback.interaction_id, redactor)
        grew = (
            curation.accepted(repo, stored, interaction)
            or curation.misfired(repo, stored, interaction, authority.trusted)
            or grew
        )
        if negative is not None:
            injected = dict.fromkeys(i["lesson_id"] for i in interaction["injected"])
            shadow = dict.fromkeys(i["lesson_id"] for i in interaction.get("shadow") or ())
            repo.count_effect(negative, list(injected), list(shadow))
        if negative is False and other is None:
            _accept_regenerations(repo, interaction)
    return Recorded(stored, lesson, grew=grew, preferences=taste)


def _taste(
    repo: TrailRepo, feedback: Feedback, interaction: dict[str, Any], policy: Policy | None, app_bound: bool
) -> tuple[tuple[Preference, ...], bool]:
    """What the feedback teaches the answered user's profile (the preferences it changed), and
    whether it teaches them alone (then no lesson: their taste is not the app's). Only the user
    speaks for their taste: feedback from the user answered (or sent for them, naming no other
    user), never a reviewer's or the proxy's own signals. A sender bound to apps teaches the
    user's profile in the turn's app alone (a key narrows, never widens), and so does a browser
    token (the app that made the turn holds it): only a key bound to no app writes a preference
    for every app (`scope: user`)."""
    user = interaction.get("user_id")
    config = policy.spec.preferences if policy else None
    if config is None or not config.learn or not user or feedback.source != "user":
        return (), False
    if feedback.user_id not in (None, user):
        return (), False
    found = preferences.signals(feedback, interaction.get("response_text") or "", config.categories)
    if not found:
        return (), False
    app = interaction["app"] if config.scope == "app" or app_bound else EVERY_APP
    owner = (interaction.get("tenant") or "", app, user)
    current = stored_preferences.owned(repo.conn, *owner)
    changed = preferences.updated(current, found, feedback, owner)
    stored_preferences.save(repo.conn, changed)
    return tuple(changed), preferences.personal_only(feedback, found, config.categories)


def _accept_regenerations(repo: TrailRepo, interaction: dict[str, Any]) -> None:
    """Positive feedback on an answer that regenerated an earlier one accepts the regeneration:
    the pair (this answer preferred over the one the user regenerated) is kept for preference
    export, as implicit `preferred_over` feedback, once per pair."""
    chosen = interaction["id"]
    already = paired(repo, chosen)
    for rejected in regenerated_by(repo, chosen, interaction.get("session_id")):
        if rejected not in already:
            repo.insert_feedback(
                Feedback(feedback_id(), chosen, time.time(), source="implicit", preferred_over=rejected)
            )


async def record_feedback(
    feedback: Feedback,
    db: TrailDB,
    policies: PolicySet,
    index: LessonIndex,
    authority: Authority = Authority(),
) -> Recorded:
    """Store ``feedback`` (and its lesson) durably, then index the lesson. Raises ApiError 404
    for an interaction the sender may not see, as for one that does not exist."""
    store = partial(_store, feedback=feedback, policies=policies, authority=authority)
    try:
        recorded = await db.run(store)
    except ApiError as exc:
        # with replicas, the turn may have been answered by another one whose writer has not
        # committed it yet (milliseconds): look for it a moment (a plain read, no write lock)
        # before answering 404, then store once more
        if exc.code != "interaction_not_found" or not db.shared:
            raise
        deadline = time.monotonic() + ANOTHER_WRITER_S
        seen = partial(
            TrailRepo.get_interaction, interaction_id=feedback.interaction_id, visibility=authority.visibility
        )
        while await db.read(seen) is None:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(ANOTHER_WRITER_S / 4)
        recorded = await db.run(store)
    lesson = recorded.lesson
    if lesson is not None or recorded.grew:
        try:
            await index.sync(db)
        except Exception as exc:  # noqa: BLE001 - committed; the periodic sync retries
            log.warning("a lesson stored but not indexed yet (%s); the sync retries", exc)
    return recorded
