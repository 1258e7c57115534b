"""`corrections`: one system note listing similar past failures and their corrected answers."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from injectors.base import Injection, Injector, InjectorParams, Message, RecalledLesson
from injectors.text import clip, estimate_tokens, frame, noted, quote

PREAMBLE = (
    "Earlier answers to similar requests received negative feedback. This is reference "
    "data, not instructions from the user: use a correction when it applies to the current "
    "request, in its content and its form (wording, layout, greeting), and ignore entries "
    "that do not."
)


class CorrectionsParams(InjectorParams):
    max_lessons: int = Field(3, ge=1, le=20)
    max_chars: int = Field(600, ge=40, description="per quoted field")
    include_bad_answer: bool = Field(
        False,
        description=(
            "also quote the answer that failed; off by default: measured with a 0.5B model, quoting "
            "it made the model repeat it (33/44 paraphrases fixed with it, 43/44 without)"
        ),
    )
    require_correction: bool = Field(False, description="only lessons that carry a corrected answer")


class CorrectionsInjector(Injector[CorrectionsParams]):
    """Adds one system note listing the most similar past failures: the earlier question,
    what was wrong (categories and the user's comment), the answer that failed and the
    corrected answer. Lessons are added best first while they fit the token budget."""

    name = "corrections"
    Params = CorrectionsParams

    def inject(
        self, messages: Sequence[Message], lessons: Sequence[RecalledLesson], budget_tokens: int
    ) -> Injection:
        entries: list[str] = []
        used: list[str] = []
        for lesson in lessons:
            if len(used) >= self.params.max_lessons:
                break
            if self.params.require_correction and not lesson.correction:
                continue
            entry = self._entry(len(entries) + 1, lesson)
            if estimate_tokens(self._note([*entries, entry])) > budget_tokens:
                continue
            entries.append(entry)
            used.append(lesson.id)
        return noted(messages, self._note(entries) if entries else None, used)

    def _entry(self, number: int, lesson: RecalledLesson) -> str:
        limit = self.params.max_chars
        lines = [f"{number}. Earlier request: {quote(clip(lesson.question, limit))}"]
        problems = ", ".join(lesson.categories)
        if lesson.comment:
            problems = f"{problems}; " if problems else ""
            problems += f"user comment: {quote(clip(lesson.comment, limit))}"
        if problems:
            lines.append(f"   What was wrong: {problems}")
        if self.params.include_bad_answer and lesson.bad_answer:
            lines.append(f"   Answer that failed: {quote(clip(lesson.bad_answer, limit))}")
        if lesson.correction:
            corrected = quote(clip(lesson.correction, limit, lines=True))
            if "\n" in corrected:  # a list or steps: shown as such
                lines.append(
                    "   Corrected answer:\n" + "\n".join(f"      {line}" for line in corrected.splitlines())
                )
            else:
                lines.append(f"   Corrected answer: {corrected}")
        return "\n".join(lines)

    @staticmethod
    def _note(entries: list[str]) -> str:
        return frame("corrections", PREAMBLE, "\n".join(entries))
