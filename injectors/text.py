"""Helpers shared by injectors: token estimates, framing as reference data, message placement."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from injectors.base import Injection, Message

CHARS_PER_TOKEN = 4
CLOSE_TAG = "</loopwise-reference>"


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate (about four characters per token for English text)."""
    return -(-len(text) // CHARS_PER_TOKEN)


def clip(text: str, max_chars: int, lines: bool = False) -> str:
    """Shorten ``text`` to ``max_chars``, marking the cut; spacing collapsed, and with
    ``lines`` its line breaks kept (a list, steps: the form is part of what it teaches)."""
    if lines:
        text = "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())
    else:
        text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    return text[: max(0, max_chars - 1)].rstrip() + "…"


FRAME_WORD = re.compile(r"loopwise[\W_]*reference", re.IGNORECASE)


def quote(text: str) -> str:
    """Neutralise anything in user-supplied text that could read as our delimiter: every
    spelling of its name, whatever bracket, slash or look-alike surrounds it, is replaced, so
    the text can neither close the frame nor open a new one."""
    text = unicodedata.normalize("NFKC", text)
    return FRAME_WORD.sub("[tag removed]", text)


def frame(kind: str, preamble: str, body: str) -> str:
    """Delimit injected text and say it is reference data, not instructions from the user."""
    return f'<loopwise-reference kind="{kind}">\n{preamble}\n\n{body}\n{CLOSE_TAG}'


def with_system_note(messages: Sequence[Message], note: str) -> list[Message]:
    """Insert ``note`` as a system message after the leading system messages."""
    out = list(messages)
    position = 0
    while position < len(out) and out[position].get("role") in ("system", "developer"):
        position += 1
    out.insert(position, {"role": "system", "content": note})
    return out


def noted(messages: Sequence[Message], note: str | None, lesson_ids: Sequence[str]) -> Injection:
    """The Injection for an injector that adds one system note (or nothing when ``note`` is None)."""
    if note is None:
        return Injection(messages=list(messages))
    return Injection(
        messages=with_system_note(messages, note),
        lesson_ids=tuple(lesson_ids),
        tokens=estimate_tokens(note),
    )


def message_text(message: Message) -> str:
    """The text of a message whose content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def last_user_text(messages: Sequence[Message]) -> str:
    """The latest user turn's text, or '' when there is none."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""
