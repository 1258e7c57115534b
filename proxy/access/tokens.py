"""Feedback tokens: each answer carries one (`X-Loopwise-Feedback-Token`), so an end-user app
can post feedback straight from the browser, for that interaction only and for a short while,
without holding a key. `lwf.<expiry>.<HMAC-SHA256 of interaction and expiry>`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

PREFIX = "lwf."


class FeedbackTokens:
    def __init__(self, secret: bytes | None, ttl_s: float) -> None:
        self._secret = secret or secrets.token_bytes(32)  # per process when none is configured
        self.ttl_s = ttl_s

    def _sign(self, interaction_id: str, expires: int) -> str:
        digest = hmac.new(self._secret, f"{interaction_id}.{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()

    def issue(self, interaction_id: str) -> str:
        expires = int(time.time() + self.ttl_s)
        return f"{PREFIX}{expires}.{self._sign(interaction_id, expires)}"

    def valid(self, token: str, interaction_id: str) -> bool:
        """Whether `token` was issued for `interaction_id` and has not expired."""
        head, _, signature = token.removeprefix(PREFIX).partition(".")
        if not (head.isascii() and head.isdigit() and len(head) <= 12) or int(head) < time.time():
            return False
        expected = self._sign(interaction_id, int(head)).encode()
        return hmac.compare_digest(signature.encode("utf-8", "replace"), expected)


def token_secret(configured: str | None, master: str | None) -> bytes | None:
    """The configured secret, else one derived from the master key (so replicas agree)."""
    if configured:
        return configured.encode()
    if master:
        return hmac.new(master.encode(), b"loopwise feedback tokens", hashlib.sha256).digest()
    return None
