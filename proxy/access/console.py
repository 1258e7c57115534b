"""Console sign-in: a person pastes a key once; the browser then holds a signed session cookie,
`lwc.<expiry>.<subject>.<fingerprint>.<HMAC>`, never the key itself. The subject is the key's id
(or `master`), the fingerprint a keyed digest of the key's hash (it reveals nothing of the key),
so a revoked or rotated key ends every session signed in with it at the next request. Each form
carries a token derived from the cookie, which a page of another site cannot read (the cookie
is also SameSite=Strict). Signing out ends the session in this process at once; other replicas
refuse it when it expires or its key is revoked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

PREFIX = "lwc."
COOKIE = "loopwise_console"
OPEN_SUBJECT = "open"  # no key configured: the console on loopback signs nobody in
SIGNED_OUT_KEPT = 10_000  # sessions remembered as signed out (each until it would expire)


@dataclass(frozen=True)
class ConsoleSession:
    subject: str  # a key id, `master`, or `open`
    fingerprint: str
    expires: int


class ConsoleSessions:
    def __init__(self, secret: bytes | None, ttl_s: float = 12 * 3600) -> None:
        base = secret or secrets.token_bytes(32)  # per process when none is configured
        self._secret = hmac.new(base, b"loopwise console sessions", hashlib.sha256).digest()
        self.ttl_s = ttl_s
        self._signed_out: dict[str, int] = {}  # cookie MAC -> when the cookie would expire

    def _mac(self, text: str) -> str:
        digest = hmac.new(self._secret, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")

    def fingerprint(self, key_hash: str) -> str:
        """What a session keeps of its key: enough to notice a rotated key, nothing to test
        guesses of it against."""
        return self._mac(f"key.{key_hash}")[:16]

    def master_fingerprint(self, master: str) -> str:
        return self.fingerprint(hashlib.sha256(master.encode()).hexdigest())

    def issue(self, subject: str, fingerprint: str) -> str:
        expires = int(time.time() + self.ttl_s)
        body = f"{expires}.{subject}.{fingerprint}"
        return f"{PREFIX}{body}.{self._mac(body)}"

    def read(self, cookie: str | None) -> ConsoleSession | None:
        """The session a cookie holds, if this proxy signed it, it has not expired and it was not
        signed out here."""
        if not cookie or not cookie.startswith(PREFIX) or len(cookie) > 512:
            return None
        body, _, mac = cookie.removeprefix(PREFIX).rpartition(".")
        parts = body.split(".")
        if len(parts) != 3 or not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return None
        expires, subject, print_ = parts
        if not expires.isdigit() or int(expires) < time.time() or _ended(mac) in self._signed_out:
            return None
        return ConsoleSession(subject, print_, int(expires))

    def sign_out(self, cookie: str) -> tuple[str, int] | None:
        """End a session in this process, even for a copy of its cookie; returns what other
        replicas need to end it too (`forbid`): a digest of its MAC and when it expires."""
        session = self.read(cookie)
        if session is None:
            return None
        ended = (_ended(cookie.rpartition(".")[2]), session.expires)
        self.forbid([ended])
        return ended

    def forbid(self, ended: Iterable[tuple[str, int]]) -> None:
        """Sessions signed out (here, or on another replica) stay refused until they expire."""
        now = time.time()
        for digest, expires in ended:
            if len(self._signed_out) >= SIGNED_OUT_KEPT and digest not in self._signed_out:
                self._signed_out = {m: e for m, e in self._signed_out.items() if e > now}
                while len(self._signed_out) >= SIGNED_OUT_KEPT:  # still full: forget the soonest to expire
                    del self._signed_out[min(self._signed_out, key=self._signed_out.__getitem__)]
            self._signed_out[digest] = int(expires)

    def form_token(self, cookie: str) -> str:
        """The token every form of this session posts back (double submit, signed)."""
        return self._mac(f"form.{cookie}")

    def form_token_valid(self, cookie: str, token: str) -> bool:
        return hmac.compare_digest(token.encode("utf-8", "replace"), self.form_token(cookie).encode())


def _ended(mac: str) -> str:
    """What is kept of a signed-out session: a digest of its MAC (the MAC itself never leaves)."""
    return hashlib.sha256(mac.encode()).hexdigest()
