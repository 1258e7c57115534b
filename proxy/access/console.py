"""Console sign-in: a person pastes a key once; the browser then holds a signed session cookie,
`lwc.<expiry>.<subject>.<fingerprint>.<HMAC>`, never the key itself. The subject is the key's id
(or `master`), the fingerprint a piece of the key's hash, so a revoked or rotated key ends every
session signed in with it at the next request. Each form carries a token derived from the
cookie, which a page of another site cannot read (the cookie is also SameSite=Strict)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

PREFIX = "lwc."
COOKIE = "loopwise_console"
OPEN_SUBJECT = "open"  # no key configured: the console on loopback signs nobody in


@dataclass(frozen=True)
class ConsoleSession:
    subject: str  # a key id, `master`, or `open`
    fingerprint: str
    expires: int


def fingerprint(key_hash: str) -> str:
    return key_hash[:16]


def master_fingerprint(master: str) -> str:
    return fingerprint(hashlib.sha256(master.encode()).hexdigest())


class ConsoleSessions:
    def __init__(self, secret: bytes | None, ttl_s: float = 12 * 3600) -> None:
        base = secret or secrets.token_bytes(32)  # per process when none is configured
        self._secret = hmac.new(base, b"loopwise console sessions", hashlib.sha256).digest()
        self.ttl_s = ttl_s

    def _mac(self, text: str) -> str:
        digest = hmac.new(self._secret, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")

    def issue(self, subject: str, fingerprint: str) -> str:
        expires = int(time.time() + self.ttl_s)
        body = f"{expires}.{subject}.{fingerprint}"
        return f"{PREFIX}{body}.{self._mac(body)}"

    def read(self, cookie: str | None) -> ConsoleSession | None:
        """The session a cookie holds, if this proxy signed it and it has not expired."""
        if not cookie or not cookie.startswith(PREFIX) or len(cookie) > 512:
            return None
        body, _, mac = cookie.removeprefix(PREFIX).rpartition(".")
        parts = body.split(".")
        if len(parts) != 3 or not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return None
        expires, subject, print_ = parts
        if not expires.isdigit() or int(expires) < time.time():
            return None
        return ConsoleSession(subject, print_, int(expires))

    def form_token(self, cookie: str) -> str:
        """The token every form of this session posts back (double submit, signed)."""
        return self._mac(f"form.{cookie}")

    def form_token_valid(self, cookie: str, token: str) -> bool:
        return hmac.compare_digest(token.encode("utf-8", "replace"), self.form_token(cookie).encode())
