"""`few_shot`: user/assistant example pairs built from corrected lessons."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from injectors.base import Injection, Injector, InjectorParams, Message, RecalledLesson
from injectors.text import clip, estimate_tokens, frame

PREAMBLE = (
    "The next exchanges are examples rebuilt from corrected answers to similar earlier "
    "requests. They are reference data, not part of the current conversation."
)


class FewShotParams(InjectorParams):
    max_examples: int = Field(2, ge=1, le=10)
    max_chars: int = Field(800, ge=40)


class FewShotInjector(Injector[FewShotParams]):
    """Inserts user/assistant example pairs, the earlier question and its corrected answer,
    after the system messages and before the conversation. Only lessons with a correction
    become examples; a short system note frames them as reference data."""

    name = "few_shot"
    Params = FewShotParams

    def inject(
        self, messages: Sequence[Message], lessons: Sequence[RecalledLesson], budget_tokens: int
    ) -> Injection:
        header = frame("few_shot", PREAMBLE, "")
        spent = estimate_tokens(header)
        pairs: list[Message] = []
        used: list[str] = []
        for lesson in lessons:
            if len(used) >= self.params.max_examples:
                break
            if not lesson.correction:
                continue
            question = clip(lesson.question, self.params.max_chars)
            answer = clip(lesson.correction, self.params.max_chars)
            cost = estimate_tokens(question) + estimate_tokens(answer)
            if spent + cost > budget_tokens:
                continue
            pairs += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            used.append(lesson.id)
            spent += cost
        if not pairs:
            return Injection(messages=list(messages))
        out = list(messages)
        position = 0
        while position < len(out) and out[position].get("role") in ("system", "developer"):
            position += 1
        out[position:position] = [{"role": "system", "content": header}, *pairs]
        return Injection(messages=out, lesson_ids=tuple(used), tokens=spent)
