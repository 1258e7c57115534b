"""The injector contract: the lesson view injectors see and what they return."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

Message = dict[str, Any]
"""One OpenAI chat message, kept as the client sent it (unknown keys intact)."""


@dataclass(frozen=True)
class RecalledLesson:
    """A recalled past failure, as injectors see it."""

    id: str
    score: float
    question: str
    bad_answer: str = ""
    categories: tuple[str, ...] = ()
    comment: str = ""
    correction: str = ""


@dataclass(frozen=True)
class Injection:
    """What one injector did: the new messages, the lessons it used, the tokens it added."""

    messages: list[Message]
    lesson_ids: tuple[str, ...] = ()
    tokens: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Context:
    """What an injector may know of the request beyond its messages and the recalled lessons."""

    preferences: Mapping[str, str] = field(default_factory=dict)  # the user's profile: dimension -> value


class InjectorParams(BaseModel):
    """Base for every injector's parameters: a typo in a policy is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=InjectorParams)


class Injector(ABC, Generic[P]):
    """A named prompt rewriter with its own validated parameters.

    Subclasses set ``name`` and ``Params`` and implement :meth:`inject`. The docstring of a
    subclass is its user documentation (``loopwise policy injectors`` prints it).
    """

    name: ClassVar[str]
    Params: ClassVar[type[InjectorParams]]
    reads_profile: ClassVar[bool] = False  # the request path loads the user's preferences for it

    def __init__(self, params: P) -> None:
        self.params = params

    @abstractmethod
    def inject(
        self, messages: Sequence[Message], lessons: Sequence[RecalledLesson], budget_tokens: int
    ) -> Injection:
        """Return new messages; never mutate ``messages``; add at most ``budget_tokens``."""

    def inject_in(
        self,
        messages: Sequence[Message],
        lessons: Sequence[RecalledLesson],
        budget_tokens: int,
        context: Context,
    ) -> Injection:
        """What the pipeline calls: :meth:`inject`, unless the injector also reads the context."""
        return self.inject(messages, lessons, budget_tokens)
