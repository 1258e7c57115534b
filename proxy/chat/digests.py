"""A conversation reduced to a chain of message digests: each message as the conversation means
it (role, content folded for case and spacing, tool calls without their ids), and digests[k]
for the first k messages, so two requests' histories compare prefix by prefix."""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping, Sequence
from typing import Any

import orjson

MAX_DIGESTS = 100_000  # messages whose digest is remembered (about 13 MB)
MAX_COMPARED = 8192  # characters of a text normalised before hashing; the rest is hashed as is
TEXT_PARTS = frozenset({"text", "input_text", "output_text"})


def normal(text: str) -> str:
    """Case and spacing folded, for a bounded head; a longer text keeps its tail's hash and length."""
    seen = " ".join(text[:MAX_COMPARED].split()).casefold()
    if len(text) > MAX_COMPARED:
        tail = hashlib.blake2b(text[MAX_COMPARED:].encode(errors="replace"), digest_size=16).hexdigest()
        seen += f"\x00{len(text)}\x00{tail}"
    return seen


def _content(content: Any) -> str:
    """A message's content, a string or a list of parts: text parts as their folded text (so a
    string and one text part agree), any other part (an image, a file) by its JSON."""
    if isinstance(content, str):
        return normal(content)
    if isinstance(content, list):
        text, others = [], []
        for part in content:
            if isinstance(part, dict) and part.get("type") in TEXT_PARTS:
                text.append(str(part.get("text", "")))
            else:
                others.append(repr(part))
        return "\x1e".join([normal("\n".join(text)), *others])
    return "" if content is None else repr(content)


def _calls(message: dict[str, Any]) -> str:
    """Tool calls (and the legacy `function_call`) by name and arguments; their ids left out."""
    calls = message.get("tool_calls")
    out = []
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            out.append(f"{function.get('name')}({normal(str(function.get('arguments', '')))})")
        else:
            out.append(repr(call))
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        out.append(f"{legacy.get('name')}({normal(str(legacy.get('arguments', '')))})")
    return "\x1e".join(out)


def message_digest(message: Any) -> bytes:
    """One message as the conversation means it: role (`developer` as `system`), name, content,
    tool calls, the tool call it answers."""
    if not isinstance(message, dict):
        return hashlib.blake2b(repr(message).encode(errors="replace"), digest_size=16).digest()
    role = message.get("role")
    role = "system" if role == "developer" else role
    content = _content(message.get("content"))
    said = (role, message.get("name"), content, _calls(message), message.get("tool_call_id"))
    seen = "\x1f".join("" if f is None else str(f) for f in said)
    return hashlib.blake2b(seen.encode(errors="replace"), digest_size=16).digest()


def prefix_digests(messages: Sequence[Any], memo: MutableMapping[bytes, bytes] | None = None) -> list[bytes]:
    """digests[k] stands for messages[:k]: a chain, so any prefix compares in one look-up.
    With a `memo`, a message seen before (a conversation re-sends its history every turn) is
    looked up by a hash of its exact bytes instead of being folded again."""
    chain = [b""]
    for message in messages:
        if memo is None:
            digest = message_digest(message)
        else:
            exact = hashlib.blake2b(orjson.dumps(message, default=repr), digest_size=16).digest()
            known = memo.get(exact)
            digest = known if known is not None else message_digest(message)
            memo[exact] = digest
        chain.append(hashlib.blake2b(chain[-1] + digest, digest_size=16).digest())
    return chain
