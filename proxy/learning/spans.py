"""A span of an answer marked wrong: found in the answer as the trail stores it, and turned into
the whole corrected answer a lesson carries."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from proxy.errors import ApiError
from proxy.records import Feedback


def _bad_span(message: str) -> ApiError:
    return ApiError(400, message, param="span", code="invalid_span")


def locate(answer: str, start: int, end: int, text: str | None) -> tuple[int, int]:
    """Where the span is in `answer`. Offsets count Unicode code points of the stored answer;
    `text`, when given, is what the sender saw there and wins: the stored answer is redacted,
    so offsets a client took from the answer it was sent may be off by what redaction changed.
    A text found once elsewhere is taken there; one not found, or found more than once away
    from the offsets, is a 400."""
    if text is None or answer[start:end] == text:
        if end > len(answer):
            raise _bad_span(f"span [{start}, {end}) is past the end of the answer ({len(answer)} characters)")
        return start, end
    if not text:
        raise _bad_span("span.text is empty")
    found = answer.find(text)
    if found < 0:
        raise _bad_span("span.text is not in the answer (as the trail stores it); send the offsets alone")
    if answer.find(text, found + 1) >= 0:
        raise _bad_span("span.text occurs more than once in the answer and the offsets match none")
    return found, found + len(text)


def resolve(feedback: Feedback, answer: str) -> Feedback:
    """The feedback with its span fixed to the stored answer and, when the span says what it
    should have been, the whole corrected answer as its correction (a correction given with it
    wins)."""
    span: dict[str, Any] | None = feedback.span
    if span is None:
        return feedback
    start, end = locate(answer, span["start"], span["end"], span.get("text"))
    replacement = span.get("correction")
    correction = feedback.correction
    if correction is None and replacement is not None:
        correction = (answer[:start] + replacement + answer[end:]).strip() or None
    fixed = {"start": start, "end": end, "text": answer[start:end], "correction": replacement}
    return replace(feedback, span=fixed, correction=correction)
