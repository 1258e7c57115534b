"""The principal a request acts as, and the rules that bound what its headers may claim:
a key fixes its tenant, the apps it may act for and, optionally, the user role; headers may
narrow that, never widen it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from proxy.errors import ApiError
from proxy.records import SCOPES, Key, Visibility

DEFAULT_APP = "default"


def _glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _denied(message: str, code: str, param: str | None = None) -> ApiError:
    return ApiError(403, message, code=code, param=param)


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str]
    apps: tuple[str, ...] | None = None  # glob patterns; None: every app
    tenant: str | None = None
    all_tenants: bool = True
    user_role: str | None = None  # fixed by the key
    token: str | None = None  # a browser feedback token, checked against its interaction
    unbounded: bool = False  # the master key, or no key configured: may claim any role
    key_id: str | None = None  # a virtual key's id (logged, where its name may be anything)

    @property
    def visibility(self) -> Visibility:
        return Visibility(self.apps, self.tenant, self.all_tenants)

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise _denied(f"this key lacks the `{scope}` scope this route needs", "insufficient_scope")

    def allows_app(self, app: str) -> bool:
        return self.apps is None or any(fnmatchcase(app, pattern) for pattern in self.apps)

    def covers(self, pattern: str) -> bool:
        """Whether every app `pattern` names is one this principal may act for: one of its own
        patterns, or a plain name it allows."""
        if self.apps is None:
            return True
        return pattern in self.apps or (not _glob(pattern) and self.allows_app(pattern))

    def app_for(self, claimed: str | None) -> str:
        """The app a request acts for: the one claimed, which the key must allow; else the key's
        only app; else `default`."""
        if claimed is None:
            only = self.apps[0] if self.apps is not None and len(self.apps) == 1 else None
            claimed = only if only and not _glob(only) else DEFAULT_APP
        if not self.allows_app(claimed):
            allowed = ", ".join(self.apps or ())
            raise _denied(f"this key may not act for app {claimed!r}; its apps: {allowed}", "app_not_allowed")
        return claimed

    def tenant_for(self, claimed: str | None) -> str | None:
        if self.all_tenants:
            return claimed
        if claimed is not None and claimed != self.tenant:
            raise _denied(f"this key acts for tenant {self.tenant!r} only", "tenant_not_allowed")
        return self.tenant

    def role_for(self, claimed: str | None, trusted_roles: Sequence[str]) -> str | None:
        """A key with a role fixes it; a trusted role can be claimed only through a key that
        grants it (or the master key)."""
        if self.user_role is not None:
            if claimed is not None and claimed != self.user_role:
                raise _denied(f"this key acts as role {self.user_role!r} only", "role_not_allowed")
            return self.user_role
        if claimed in trusted_roles and not self.unbounded:
            message = f"role {claimed!r} is trusted: only a key that grants it may claim it"
            raise _denied(message, "role_not_allowed")
        return claimed


EVERY_SCOPE = frozenset(SCOPES)
OPEN = Principal("open", EVERY_SCOPE, unbounded=True)  # no key configured: loopback only
MASTER = Principal("master", EVERY_SCOPE, unbounded=True)


def of_key(key: Key) -> Principal:
    apps = None if "*" in key.apps else key.apps
    return Principal(key.name, frozenset(key.scopes), apps, key.tenant, False, key.user_role, key_id=key.id)


def of_token(token: str) -> Principal:
    """A browser's feedback token: feedback on its one interaction, nothing else."""
    return Principal("feedback-token", frozenset({"feedback"}), token=token)
