"""`preferences`: the standing preferences of the user being answered (their profile, learned
from their own feedback), as one system note for that user's requests only."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from injectors.base import Context, Injection, Injector, InjectorParams, Message, RecalledLesson
from injectors.text import estimate_tokens, frame, noted

# dimension:value -> the instruction; a fixed vocabulary, so no user's words reach a prompt here
DEFAULT_TEXTS: dict[str, str] = {  # measured with a 0.5B model: bench/preferences.py
    "length:brief": "Keep the answer brief: two or three short sentences at most, with no introduction, "
    "list or summary.",
    "length:detailed": "Give a full answer: explain it step by step, with the relevant details "
    "and an example.",
    "register:formal": "Use formal English. Never use contractions: write 'it is', 'do not' and 'you are' in "
    "full. Never use exclamation marks, slang or emoji.",
    "register:casual": "Write in a casual, friendly register, as you would in a chat with a friend.",
    "format:list": "Format the answer as a short bulleted list.",
    "format:prose": "Write the answer as plain prose, without bullet points or numbered lists.",
}
ORDER = ("length", "register", "format")


class PreferencesParams(InjectorParams):
    texts: dict[str, str] = Field(
        default_factory=dict,
        description="`dimension:value` -> instruction (for example `length:brief`); merged over "
        "the built-in texts",
    )
    framed: bool = Field(
        False,
        description="wrap the note in the reference-data frame of the other injectors; off by default: "
        "the texts are the operator's, never a user's, and a small model followed them far less framed",
    )


class PreferencesInjector(Injector[PreferencesParams]):
    """Adds one system note with the standing preferences of the user being answered (for
    example "Keep the answer brief ..." for a user who said an answer was too long), learned
    from that user's own feedback (the policy's `preferences`). Each preference is a fixed text
    (`texts` overrides them), so nothing a user wrote reaches the prompt, and it goes as a plain
    instruction (`framed: true` wraps it as reference data); requests without a user id, or
    from a user with no preferences, are left as they are."""

    name = "preferences"
    Params = PreferencesParams
    reads_profile = True

    def inject(
        self, messages: Sequence[Message], lessons: Sequence[RecalledLesson], budget_tokens: int
    ) -> Injection:
        return Injection(messages=list(messages))

    def inject_in(
        self,
        messages: Sequence[Message],
        lessons: Sequence[RecalledLesson],
        budget_tokens: int,
        context: Context,
    ) -> Injection:
        texts = {**DEFAULT_TEXTS, **self.params.texts}
        ranked = sorted(context.preferences.items(), key=lambda kv: (*ORDER, kv[0]).index(kv[0]))
        lines: list[str] = []
        for dimension, value in ranked:
            text = texts.get(f"{dimension}:{value}")
            if text and estimate_tokens(self._note([*lines, text])) <= budget_tokens:
                lines = [*lines, text]
        return noted(messages, self._note(lines) if lines else None, ())

    def _note(self, lines: list[str]) -> str:
        """One instruction per line: as they are (the operator's texts, so no user's words), or
        in the reference frame when the policy asks for it. Measured with the 0.5B model on 8
        questions (`bench/preferences.py`'s), `length:brief` cut the median answer by 66% as a
        plain system message and by 26% framed."""
        body = "\n".join(lines)
        if not self.params.framed:
            return body
        preamble = (
            "The user being answered has said, in feedback on earlier answers, how they want to be "
            "answered. Follow these preferences unless this conversation asks otherwise:"
        )
        return frame("preferences", preamble, body)
