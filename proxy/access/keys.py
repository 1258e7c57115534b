"""Virtual keys: made once (the secret is shown once, only its SHA-256 is kept), and the
in-memory ring the hot path checks with one hash and one dictionary look-up."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Sequence

from proxy.records import SCOPES, Key, key_id

SECRET_PREFIX = "lw-"


def hash_secret(secret: str) -> str:
    """Keys are 256 random bits: a plain SHA-256 is as strong as a slow hash here, and cheap."""
    return hashlib.sha256(secret.encode()).hexdigest()


def make_key(
    name: str,
    scopes: Sequence[str],
    apps: Sequence[str] = ("*",),
    tenant: str | None = None,
    user_role: str | None = None,
) -> tuple[str, Key]:
    """A new key and its secret (to show once). Raises ValueError for an unknown scope."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"unknown scope {unknown[0]!r}" if unknown else "a key needs at least one scope")
    if not apps or any(not app for app in apps):
        raise ValueError("a key needs at least one app (or '*')")
    if any(c in app for app in apps for c in "[]"):  # fnmatch and SQLite GLOB read brackets differently
        raise ValueError("app patterns take * and ? only, no [...] classes")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    key = Key(
        id=key_id(),
        name=name,
        hash=hash_secret(secret),
        prefix=secret[:7],
        scopes=tuple(dict.fromkeys(scopes)),
        apps=tuple(dict.fromkeys(apps)),
        tenant=tenant or None,
        user_role=user_role or None,
        created_at=time.time(),
    )
    return secret, key


class KeyRing:
    """The active keys, by hash, plus the master key. Swapped whole when keys change."""

    def __init__(self, master: str | None = None, keys: Iterable[Key] = ()) -> None:
        self.master = master
        self._by_hash = {key.hash: key for key in keys}
        self.stamp: object = None  # what the keys looked like when last loaded

    def replace(self, keys: Iterable[Key], stamp: object = None) -> None:
        self._by_hash = {key.hash: key for key in keys}
        self.stamp = stamp

    def add(self, key: Key) -> None:
        """A key made on this replica works at once (others pick it up with their next refresh)."""
        self._by_hash = {**self._by_hash, key.hash: key}

    def discard(self, key_id: str) -> None:
        self._by_hash = {h: k for h, k in self._by_hash.items() if k.id != key_id}

    @property
    def enforced(self) -> bool:
        """Whether any key exists: without one, the proxy is open (and serves loopback only)."""
        return bool(self.master or self._by_hash)

    def is_master(self, secret: str) -> bool:
        return self.master is not None and hmac.compare_digest(secret.encode(), self.master.encode())

    def find(self, secret: str) -> Key | None:
        return self._by_hash.get(hash_secret(secret))

    def by_id(self, wanted: str) -> Key | None:
        """An active key by its id (a console session names its key so); a scan, since only a
        page load of the console asks, never a proxied call."""
        return next((key for key in self._by_hash.values() if key.id == wanted), None)
