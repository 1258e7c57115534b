"""Personal preferences: what one user's feedback says about the form they want (shorter,
fuller, more formal, more casual, as a list or as prose), kept as that user's profile. Pure
decisions; `proxy.learning.feedback` reads, calls these and writes in its transaction.

A profile holds one value per dimension. The rule for a later signal: the latest signal said
in the user's own words (a category, a comment, a dimension score) sets the value; a signal the
proxy only inferred (a `wrong_tone` whose direction is read off the answer) never overrides an
explicit one, and an inferred one is replaced by anything explicit. Each value keeps the last
few pieces of evidence behind it, so a reviewer (and the user) can see why it is there."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from proxy.records import Feedback, Preference

# dimension -> its values, opposite pairs
VALUES: dict[str, tuple[str, str]] = {
    "length": ("brief", "detailed"),
    "register": ("formal", "casual"),
    "format": ("list", "prose"),
}
EVIDENCE_KEPT = 8  # the newest pieces of evidence a preference keeps

# categories that say which way the user wanted the answer to go
CATEGORY_SIGNALS: dict[str, tuple[str, str]] = {
    "too_long": ("length", "brief"),
    "too_short": ("length", "detailed"),
    "too_vague": ("length", "detailed"),
    "too_formal": ("register", "casual"),
    "too_casual": ("register", "formal"),
}
# phrases in a comment, English only (the comment is data: it is matched, never injected)
_PHRASES: tuple[tuple[str, str, str], ...] = (
    ("length", "brief", r"too (long|wordy|verbose|much text)|shorter|more concise|be (brief|concise)"
     r"|less (detail|text|verbose)|tl;?dr|get to the point|one sentence|keep it short"),
    ("length", "detailed", r"too (short|brief|terse)|more detail|longer|elaborate|explain more"
     r"|more thorough|in more depth|expand on"),
    ("register", "formal", r"too (casual|informal|chatty|familiar)|more (formal|professional)"
     r"|less (casual|informal|chatty)|be professional|formal (tone|register|language|answers?)"),
    ("register", "casual", r"too (formal|stiff|stuffy|robotic)|more (casual|relaxed|friendly|informal)"
     r"|less (formal|stiff)|casual (tone|answers?)"),
    ("format", "list", r"bullet|as a list|in a list|numbered list|use a list"),
    ("format", "prose", r"no (bullets|lists?)|not a list|as prose|in paragraphs|full sentences"),
)  # fmt: skip
_PATTERNS = tuple((d, v, re.compile(rf"\b(?:{p})", re.IGNORECASE)) for d, v, p in _PHRASES)
# a dimension score, on [-1, 1]: above 0 the answer had too much of it, below 0 too little
DIMENSION_SIGNALS: dict[str, tuple[str, str, str]] = {
    "length": ("length", "brief", "detailed"),
    "verbosity": ("length", "brief", "detailed"),
    "formality": ("register", "casual", "formal"),
}
DIMENSION_DEADBAND = 0.2
COMMENT_CHARS = 2000  # a comment is read this far


Strength = Literal["explicit", "inferred"]


@dataclass(frozen=True)
class Signal:
    dimension: str
    value: str
    said_by: str  # what said it: `category:too_long`, `comment`, `dimension:length`, `tone of the answer`
    strength: Strength = "explicit"


def _comment_signals(comment: str) -> list[Signal]:
    text = comment[:COMMENT_CHARS]
    found: dict[str, Signal] = {}
    for dimension, value, pattern in _PATTERNS:
        if dimension not in found and pattern.search(text):
            found[dimension] = Signal(dimension, value, "comment")
    return list(found.values())


_CASUAL_MARKS = re.compile(  # a possessive ("Earth's") is no contraction
    r"\b(?:hey|hi there|yeah|yep|gonna|wanna|gotta|cool|awesome|lol|btw|ok|okay)\b|!|"
    r"\b\w+['\u2019](?:re|ll|ve|d|m)\b|\b\w+n['\u2019]t\b|"
    r"\b(?:it|that|there|here|what|who|where|let|he|she)['\u2019]s\b",
    re.IGNORECASE,
)


def register_of(text: str) -> str | None:
    """`casual` when the text reads casually (contractions, slang, exclamation marks), `formal`
    when it has none of them over a sentence or more, None when too short to tell."""
    sample = text[:COMMENT_CHARS]
    if len(sample.split()) < 8:
        return None
    return "casual" if _CASUAL_MARKS.search(sample) else "formal"


def signals(feedback: Feedback, answer: str, personal: Iterable[str]) -> list[Signal]:
    """What this feedback says about the form its sender wants: its categories among `personal`
    (the policy's), its comment, its dimension scores. `wrong_tone` alone names no direction: the
    opposite of the answer's register is taken, as an inferred signal."""
    allowed = set(personal)
    found: dict[str, Signal] = {}
    for category in feedback.categories:
        if category in allowed and category in CATEGORY_SIGNALS:
            dimension, value = CATEGORY_SIGNALS[category]
            found.setdefault(dimension, Signal(dimension, value, f"category:{category}"))
    for name, score in feedback.dimensions.items():
        if name in DIMENSION_SIGNALS and abs(score) > DIMENSION_DEADBAND:
            dimension, too_much, too_little = DIMENSION_SIGNALS[name]
            found.setdefault(
                dimension, Signal(dimension, too_much if score > 0 else too_little, f"dimension:{name}")
            )
    if feedback.comment:
        for signal in _comment_signals(feedback.comment):
            found.setdefault(signal.dimension, signal)
    if "wrong_tone" in feedback.categories and "wrong_tone" in allowed and "register" not in found:
        was = register_of(answer)
        if was is not None:
            wanted = "formal" if was == "casual" else "casual"
            found["register"] = Signal("register", wanted, "category:wrong_tone", "inferred")
    return list(found.values())


_CLAUSE = re.compile(r"[.!?;:,\n\u2013\u2014]+|\s-+\s|\b(?:and|but|also|plus)\b", re.IGNORECASE)


def _only_about_form(comment: str) -> bool:
    """Every clause of the comment says something about form ("Too long, use bullets."), and
    it has no number: a comment that also says what was wrong ("far too long, and it is 45
    days") is about the content too."""
    text = comment[:COMMENT_CHARS]
    if any(c.isdigit() for c in text):
        return False
    said = [c for c in _CLAUSE.split(text) if c.strip()]
    return all(any(p.search(clause) for _, _, p in _PATTERNS) for clause in said)


def personal_only(feedback: Feedback, found: Sequence[Signal], personal: Iterable[str]) -> bool:
    """The feedback is about the user's taste alone, so it teaches their profile and no lesson:
    it says something about form, corrects nothing, names no category outside `personal`, and
    its comment, if any, speaks of form alone."""
    return (
        bool(found)
        and not feedback.correction
        and feedback.span is None
        and set(feedback.categories) <= set(personal)
        and _only_about_form(feedback.comment or "")
    )


def _evidence(feedback: Feedback, signal: Signal) -> dict[str, Any]:
    return {
        "feedback_id": feedback.id,
        "interaction_id": feedback.interaction_id,
        "value": signal.value,
        "said_by": signal.said_by,
        "strength": signal.strength,
        "at": feedback.created_at,
    }


def updated(
    current: Mapping[str, Preference],
    found: Sequence[Signal],
    feedback: Feedback,
    owner: tuple[str, str, str],
) -> list[Preference]:
    """The preferences this feedback changes, as they are after it (the rule is in the module's
    docstring). `current`: the user's profile by dimension; `owner`: (tenant, app, user)."""
    tenant, app, user_id = owner
    now = feedback.created_at or time.time()
    changed = []
    for signal in found:
        before = current.get(signal.dimension)
        guess = signal.strength == "inferred"
        if before is not None and guess and before.strength == "explicit" and before.value != signal.value:
            continue  # a guess never overrides what the user said
        evidence = [_evidence(feedback, signal)]
        if before is not None:
            evidence = [*before.evidence, *evidence][-EVIDENCE_KEPT:]
        if before is None:
            changed.append(
                Preference(
                    tenant,
                    app,
                    user_id,
                    signal.dimension,
                    signal.value,
                    signal.strength,
                    tuple(evidence),
                    now,
                    now,
                )
            )
            continue
        strength: Strength = "explicit" if "explicit" in (signal.strength, before.strength) else "inferred"
        if before.value != signal.value:
            strength = signal.strength
        changed.append(
            replace(before, value=signal.value, strength=strength, evidence=tuple(evidence), updated_at=now)
        )
    return changed


def known(dimension: str, value: str) -> bool:
    return value in VALUES.get(dimension, ())
