"""Implicit signals the proxy sees itself (a user turn re-sent in the same session is a
`regenerate`; a client that leaves mid-stream is an `abandon`), and the feedback they become."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Literal

from proxy.records import Feedback, feedback_id

DetectedSignal = Literal["regenerate", "abandon"]


MAX_COMPARED = 8192


class RegenerateDetector:
    """Remembers each session's last user turn; a repeat within the window is a regenerate."""

    def __init__(self, window_s: float, max_sessions: int = 50_000) -> None:
        self.window_s = window_s
        self.max_sessions = max_sessions
        self._last: OrderedDict[str, tuple[bytes, str, float]] = OrderedDict()

    def observe(
        self, session_id: str | None, text: str, interaction_id: str, scope: tuple[str | None, ...] = ()
    ) -> str | None:
        """Record this turn; return the earlier interaction id when it repeats the last one.
        `scope` (tenant, app, user) keeps one client's session ids from reaching another's."""
        if not session_id or not text.strip() or self.window_s <= 0:
            return None
        session_id = "\x00".join(str(part) for part in (*scope, session_id))
        seen = " ".join(text[:MAX_COMPARED].split()).casefold()  # bounded work for any message
        if len(text) > MAX_COMPARED:  # a long turn: its head and its length stand for it
            seen += f"\x00{len(text)}"
        digest = hashlib.blake2b(seen.encode(), digest_size=16).digest()
        now = time.monotonic()
        previous = self._last.pop(session_id, None)
        self._last[session_id] = (digest, interaction_id, now)
        if len(self._last) > self.max_sessions:
            self._last.popitem(last=False)
        if previous and previous[0] == digest and now - previous[2] <= self.window_s:
            return previous[1]
        return None


def implicit_feedback(interaction_id: str, signal: DetectedSignal) -> Feedback:
    return Feedback(feedback_id(), interaction_id, time.time(), source="implicit", signal=signal)
