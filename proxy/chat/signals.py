"""Implicit signals the proxy reads from a session's conversation (`regenerate`, `rephrase`, a
regeneration the user accepted), and the feedback they become. `abandon` (a client that leaves
mid-stream) is raised by the forwarder and only passes through here as feedback."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from injectors.text import message_text
from proxy.chat.digests import MAX_DIGESTS, prefix_digests
from proxy.records import Feedback, feedback_id

# `preferred`: this interaction beat `related` (a regeneration the user went on with); stored as
# feedback with `preferred_over`, no signal.
DetectedSignal = Literal["regenerate", "rephrase", "abandon", "preferred"]


def _role(message: Any) -> str | None:
    return message.get("role") if isinstance(message, dict) else None


def _has_text(message: Any) -> bool:
    return bool(message_text(message).strip()) if isinstance(message, dict) else False


def _calls_tools(message: Any) -> bool:
    return isinstance(message, dict) and bool(message.get("tool_calls") or message.get("function_call"))


@dataclass
class Seen:
    """What the detector keeps of a session's latest request (in memory, or in the shared DB's
    `session_heads` with several replicas: then `question` comes from the trail, `vector` stays
    None)."""

    interaction_id: str
    at: float
    size: int  # messages in the request
    whole: bytes  # digest of every message sent
    asked: bytes | None  # digest up to its last user turn, when the request ends there
    question: str  # the last user turn's text
    regenerated: str | None = None  # the interaction this one regenerated, until accepted
    vector: list[float] | None = None  # the question's embedding, once known
    chain: list[bytes] = field(default_factory=list, repr=False)  # this request's prefix digests (not kept)


@dataclass(frozen=True)
class Candidate:
    """An earlier turn the new user turn may say again; the embedder decides (off the request path)."""

    interaction_id: str
    question: str
    vector: list[float] | None


@dataclass(frozen=True)
class Observation:
    regenerates: str | None = None  # the earlier interaction this request re-asks
    regenerated_by: str | None = None  # a later request, seen first, that re-asks this one
    accepted: tuple[str, str] | None = None  # (chosen, rejected): a regeneration the user went on with
    rephrase: Candidate | None = None
    key: str | None = None  # the session, to remember this turn's vector under
    embeds: bool = False  # this turn ends at a user question: its vector serves the next turn


class ConversationSignals:
    """Reads each session's requests as one conversation and says what a new one means for the
    previous one. Every request is reduced to a chain of message digests (role, text folded for
    case and spacing, tool calls, tool results; bounded work for any size), so prefixes compare
    in constant time.

    - **regenerate**: the request ends at a user turn and, up to and including it, is the same
      conversation as the previous request of the session, which ended at that same user turn
      (within `window_s`). Anything after the repeated user turn (an assistant `tool_calls`
      message and its `tool` results, as agent frameworks send) makes it a continuation, not a
      regeneration; so does a changed system prompt or any changed earlier message.
    - **rephrase** (a candidate; `says_again` and the embedder decide): the request continues
      the previous one (starts with every message of it), then only that request's answer (one
      or more assistant messages with text, no tool calls), then a new user turn, and nothing
      after it.
    - **accepted regeneration**: the user went on with the second answer. Either the session's
      next request continues the regenerating request (starts with all its messages and adds
      more: the chosen answer, then tool results or a new user turn that is not a rephrase of
      the regenerated one), or the regenerating interaction gets positive feedback (rating +1,
      a score at or above the policy's `score_below`; the feedback path looks that up). Then
      the pair (chosen second answer over the rejected first) is kept, once, as implicit
      `preferred_over` feedback on the chosen one, for `loopwise export --format preference`.
      In a chain of regenerations the accepted answer is paired with the one it replaced.

    The state is per process, in memory (the latest request of up to `max_sessions` sessions,
    scoped by tenant, app and user). With several replicas a session's requests may land on
    different replicas: a regeneration, rephrase or acceptance whose two requests reach two
    replicas is not seen (route a session to one replica to keep them), and a restart forgets
    every session.

    `window_s` (`feedback.regenerate_window_s`) bounds the time between the two requests of
    every signal.
    """

    def __init__(self, window_s: float, max_sessions: int = 50_000) -> None:
        self.window_s = window_s
        self.max_sessions = max_sessions
        self._last: OrderedDict[str, Seen] = OrderedDict()
        self._digests: dict[bytes, bytes] = {}  # the hash of a message's exact bytes -> its digest

    def observe(
        self,
        session_id: str | None,
        messages: Sequence[Any],
        interaction_id: str,
        scope: Iterable[str | None] = (),
    ) -> Observation:
        """Record this request; say what it means for the session's previous one. `scope`
        (tenant, app, user) keeps one client's session ids from reaching another's."""
        read = self.read(session_id, messages, interaction_id, scope)
        if read is None:
            return Observation()
        key, current = read
        previous = self._last.pop(key, None)
        self._last[key] = current
        if len(self._last) > self.max_sessions:
            self._last.popitem(last=False)
        return self.compare(key, previous, current, messages)

    def compare(self, key: str, previous: Seen | None, current: Seen, messages: Sequence[Any]) -> Observation:
        """What `current` (of `messages`) says of the session's `previous` request."""
        try:
            return self._compare(key, previous, current, messages)
        finally:
            current.chain = []  # what is kept of a request is its ends, not every prefix

    def read(
        self,
        session_id: str | None,
        messages: Sequence[Any],
        interaction_id: str,
        scope: Iterable[str | None] = (),
    ) -> tuple[str, Seen] | None:
        """The session's key (a digest: no user id in it) and what to keep of this request;
        None when no signal can come of it."""
        if not session_id or self.window_s <= 0 or not messages:
            return None
        key = hashlib.sha256("\x00".join(str(part) for part in (*scope, session_id)).encode()).hexdigest()
        if len(self._digests) > MAX_DIGESTS:
            self._digests.clear()
        chain = prefix_digests(messages, self._digests)
        last_user = next((i for i in range(len(messages) - 1, -1, -1) if _role(messages[i]) == "user"), None)
        ends_at_user = last_user == len(messages) - 1
        question = message_text(messages[last_user]) if last_user is not None else ""
        asked = chain[-1] if ends_at_user else None
        return key, Seen(interaction_id, time.time(), len(messages), chain[-1], asked, question, chain=chain)

    def overtaken(self, key: str, current: Seen, later: Seen) -> Observation:
        """With replicas: the session's next request (`later`) was kept before this one (two
        replicas a moment apart). Only a regeneration can still be told from what is kept of
        it; `later` is then marked as regenerating this one."""
        current.chain = []
        if later.asked is None or later.asked != current.asked or later.at - current.at > self.window_s:
            return Observation(key=key)
        later.regenerated = current.interaction_id
        return Observation(regenerated_by=later.interaction_id, key=key)

    def _compare(
        self, key: str, previous: Seen | None, current: Seen, messages: Sequence[Any]
    ) -> Observation:
        embeds = current.asked is not None and bool(current.question.strip())
        if previous is None or not 0 <= current.at - previous.at <= self.window_s:
            return Observation(key=key, embeds=embeds)
        if current.asked is not None and current.asked == previous.asked:
            current.regenerated = previous.interaction_id
            return Observation(regenerates=previous.interaction_id, key=key, embeds=embeds)
        continues = len(messages) > previous.size and current.chain[previous.size] == previous.whole
        accepted = None
        if continues and previous.regenerated:
            accepted = (previous.interaction_id, previous.regenerated)
        candidate = None
        if continues and embeds and previous.question.strip():
            answer = messages[previous.size : len(messages) - 1]
            if (
                answer
                and all(_role(m) == "assistant" and not _calls_tools(m) for m in answer)
                and any(_has_text(m) for m in answer)
            ):
                candidate = Candidate(previous.interaction_id, previous.question, previous.vector)
        return Observation(accepted=accepted, rephrase=candidate, key=key, embeds=embeds)

    def remember(self, key: str, interaction_id: str, vector: list[float]) -> None:
        """Keep the question's vector for the next turn (if this turn is still the session's last)."""
        seen = self._last.get(key)
        if seen is not None and seen.interaction_id == interaction_id:
            seen.vector = vector


def implicit_feedback(interaction_id: str, signal: DetectedSignal, related: str | None = None) -> Feedback:
    """The feedback a detected signal becomes. `related`: for `regenerate`, the interaction that
    re-asked (kept in metadata, so positive feedback on it can accept the regeneration); for
    `rephrase`, the one that said it again (its question joins the lesson, `learning/curation`); for
    `preferred`, the rejected interaction this one beat."""
    if signal == "preferred":
        return Feedback(feedback_id(), interaction_id, time.time(), source="implicit", preferred_over=related)
    named = {"regenerate": "regenerated_by", "rephrase": "rephrased_by"}.get(signal)
    metadata = {named: related} if named and related else {}
    return Feedback(
        feedback_id(), interaction_id, time.time(), source="implicit", signal=signal, metadata=metadata
    )
