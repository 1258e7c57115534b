"""`static`: fixed instructions or context, injected without retrieval."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from injectors.base import Injection, Injector, InjectorParams, Message, RecalledLesson
from injectors.text import estimate_tokens, with_system_note


class StaticParams(InjectorParams):
    text: str = Field(min_length=1)
    position: Literal["system", "before_last_user"] = "system"


class StaticInjector(Injector[StaticParams]):
    """Adds a fixed text written by the operator (house rules, context), as a system message
    after the existing ones (`position: system`) or just before the latest user turn
    (`position: before_last_user`). It ignores recalled lessons and always runs; it still
    respects the token budget."""

    name = "static"
    Params = StaticParams

    def inject(
        self, messages: Sequence[Message], lessons: Sequence[RecalledLesson], budget_tokens: int
    ) -> Injection:
        tokens = estimate_tokens(self.params.text)
        if tokens > budget_tokens:
            return Injection(messages=list(messages), notes=("static text over budget",))
        if self.params.position == "system":
            return Injection(messages=with_system_note(messages, self.params.text), tokens=tokens)
        out = list(messages)
        last_user = max((i for i, m in enumerate(out) if m.get("role") == "user"), default=len(out))
        out.insert(last_user, {"role": "system", "content": self.params.text})
        return Injection(messages=out, tokens=tokens)
