"""`guidance`: one instruction per failure category seen among the recalled lessons."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from injectors.base import Injection, Injector, InjectorParams, Message, RecalledLesson
from injectors.text import estimate_tokens, frame, noted

DEFAULT_GUIDANCE: dict[str, str] = {
    "factually_incorrect": (
        "A similar earlier answer was factually wrong. State only facts you are sure of, "
        "prefer the corrected facts given here, and say so when you do not know."
    ),
    "too_vague": "A similar earlier answer was too vague. Be specific: give concrete values, "
    "steps or examples.",
    "wrong_tone": "A similar earlier answer had the wrong tone. Keep a clear, courteous, "
    "professional register.",
    "incomplete": "A similar earlier answer was incomplete. Cover every part of the question.",
    "misunderstood_intent": "A similar earlier answer misread what the user wanted. Answer the "
    "question actually asked; ask for clarification when it is ambiguous.",
    "unsafe": "A similar earlier answer was flagged as unsafe. Do not repeat unsafe content; "
    "decline harmful requests briefly.",
    "other": "A similar earlier answer was rated poorly. Take extra care with this one.",
}


class GuidanceParams(InjectorParams):
    texts: dict[str, str] = Field(
        default_factory=dict,
        description="category -> instruction; merged over the built-in texts",
    )
    min_score: float = Field(0.0, ge=0.0, le=1.0, description="ignore lessons scoring below")


class GuidanceInjector(Injector[GuidanceParams]):
    """Adds one system note with an instruction for each failure category among the recalled
    lessons (for example `wrong_tone` -> "Keep a ... professional register"). Texts come from
    the policy (`texts`), falling back to built-in ones; unknown categories without a text are
    skipped."""

    name = "guidance"
    Params = GuidanceParams

    def inject(
        self, messages: Sequence[Message], lessons: Sequence[RecalledLesson], budget_tokens: int
    ) -> Injection:
        texts = {**DEFAULT_GUIDANCE, **self.params.texts}
        lines: list[str] = []
        used: list[str] = []
        seen: set[str] = set()
        for lesson in lessons:
            if lesson.score < self.params.min_score:
                continue
            fresh = [c for c in lesson.categories if c not in seen and c in texts]
            candidate = lines + [f"- {texts[c]}" for c in fresh]
            if fresh and estimate_tokens(self._note(candidate)) <= budget_tokens:
                lines = candidate
                seen.update(fresh)
                used.append(lesson.id)
        return noted(messages, self._note(lines) if lines else None, used)

    @staticmethod
    def _note(lines: list[str]) -> str:
        return frame(
            "guidance",
            "Guidance derived from user feedback on similar earlier requests:",
            "\n".join(lines),
        )
